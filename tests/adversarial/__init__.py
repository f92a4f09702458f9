"""The adversarial suite: every failure of the network, the server or the caller ends in
one typed outcome, with nothing delivered lost, nothing leaked and nothing hung.

See ``docs/reliability.rst`` for what each module proves.
"""
