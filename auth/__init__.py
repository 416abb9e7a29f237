"""Authentication building blocks with no knowledge of the appliance: password
hashing (argon2id), TOTP secrets, generated credentials."""
