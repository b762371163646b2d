"""Broker consumers and publishers of the registration service."""
