entries: list[int] = []


def record(cents: int) -> int:
    if cents < 0:
        raise ValueError(f"refunds are not recorded here ({cents})")
    entries.append(cents)
    return len(entries)
