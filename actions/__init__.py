"""Custom actions of the Northwind Corner assistant, served by the rasa-sdk action server.

The action server imports every module of this package; each action opens one short CDP
transaction (see `actions.cdp_access`) and never holds a session across turns.
"""
