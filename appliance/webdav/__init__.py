"""WebDAV adapter: wsgidav on cheroot over HTTPS, resources backed by the Session layer."""
