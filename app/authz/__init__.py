"""Who the caller is and what it may do: the principal, its dependencies, policy functions.

Below every domain package: it imports only `app.core`, so agencies, audit and sharing
can all ask it without importing the auth package that sits above them.
"""
