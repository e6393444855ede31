"""A lending library on resources: a SQL catalogue seeded at build time, a key-value store of
members, and a secret that signs loan receipts. The catalogue and the key are handed to the
loans service as proxies."""

from distdev import host, import_service, resources

host.process()

catalogue = resources.sql("catalogue")
members = resources.kv("members")
signing_key = resources.secret("signing-key", generate=32)

catalogue.executescript("""
    CREATE TABLE books (id INTEGER PRIMARY KEY, title TEXT NOT NULL, copies INTEGER NOT NULL);
    INSERT INTO books (title, copies) VALUES ('Dune', 2), ('Emma', 1);
""")
catalogue.execute("INSERT INTO books (title, copies) VALUES (?, ?)", ["Ulysses", 3])
members.put("member:ann", {"name": "Ann", "since": 2019})

loans = import_service("./loans.py")
loans.connect(catalogue, members, signing_key)

last_titles: list[str] = []


def titles() -> list[str]:
    global last_titles
    last_titles = [title for (title,) in catalogue.query("SELECT title FROM books ORDER BY id")]
    return last_titles


def add_book(title: str, copies: int) -> int:
    return catalogue.execute("INSERT INTO books (title, copies) VALUES (?, ?)", [title, copies])


def join(member: str, name: str) -> None:
    members.put(f"member:{member}", {"name": name})


def lend(member: str, title: str) -> str:
    return loans.lend(member, title)
