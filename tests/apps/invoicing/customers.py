"""The customers an invoice may name; an unknown one is a 404 whoever asks."""

from contacts import Contact

from distdev import HTTPError, host

host.process()

_names = {"ann": "Ann Ångström", "bob": "Bob Björk"}
_contacts: dict[str, Contact] = {}


def require(customer: str) -> str:
    if customer not in _names:
        raise HTTPError(404, f"no customer {customer!r}", {"known": sorted(_names)})
    return _names[customer]


def remember(customer: str, contact: Contact) -> Contact:
    require(customer)
    _contacts[customer] = contact
    return contact
