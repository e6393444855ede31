"""distdev command line."""
def main(): pass
