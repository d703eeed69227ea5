"""Faust app and agents, with the pure text functions they call beside them."""
