"""Who is acting: the result of a login, or the CLI's administrator."""
from dataclasses import dataclass


@dataclass(frozen=True)
class Principal:
    login: str
    role: str                    # "admin" | "staff" | "client"
    client: str | None = None    # the client a client user belongs to
    user_id: int | None = None
    client_id: int | None = None

    @property
    def sees_all_clients(self) -> bool:
        return self.role in ("admin", "staff")


ADMIN = Principal(login="admin", role="admin")
