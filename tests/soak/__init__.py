"""The soak test: thousands of streams in a row on one client (see ``soak.py``)."""
