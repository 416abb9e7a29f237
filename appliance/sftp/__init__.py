"""SFTP adapter: a paramiko SSH server whose SFTP subsystem calls the Session layer."""
