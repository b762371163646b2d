"""The user-facing part of authorization: sessions, login, consent and their pages (`/u/…`)."""
