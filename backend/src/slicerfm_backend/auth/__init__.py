"""Who is asking: the shared token (simple mode), per-user tokens kept hashed in the state
directory (``slicerfm-backend users``), and optionally JWTs of the site's OpenID Connect
provider. :class:`.authenticator.Authenticator` is the one place that decides whether a
server needs credentials and whose they are."""
