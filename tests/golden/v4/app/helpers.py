def summary(orders: dict[str, int]) -> str:
    return f"{len(orders)} orders"
