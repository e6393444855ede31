"""Language server for distdev applications (see DESIGN §5)."""
