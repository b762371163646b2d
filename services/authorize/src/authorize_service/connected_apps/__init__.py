"""The connected-apps page under `/u/apps`: a signed-in user sees every application holding
access to their account and takes any of it back (`handlers`), signing in there first when
needed (`sign_in`)."""
