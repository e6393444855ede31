"""Debug Adapter Protocol server for distdev applications (see DESIGN §5)."""
