"""The web portal at /web/ on the WebDAV port: a third protocol adapter, for clients
who have only a browser. It turns forms and URLs into Session calls and Session
results into server-rendered pages (Jinja2, autoescaped; gettext catalogs through
Babel), and decides no permission, writes no audit event and touches no storage
itself."""
