"""A config's problems, collected rather than raised one by one, so that every problem in a
file is reported at once; each is ``key path: message``. Past ``MAX_PROBLEMS`` they are only
counted, in one more line."""

from __future__ import annotations

from exporter.config.limits import MAX_PROBLEMS


class ConfigError(Exception):
    """Raised with every problem found, each naming its key path."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class Problems:
    """The problems found so far."""

    def __init__(self) -> None:
        self.listed: list[str] = []
        self.unlisted = 0

    def add(self, key_path: str, message: str) -> None:
        if self.listing():
            self.listed.append(f"{key_path}: {message}")
        else:
            self.unlisted += 1

    def listing(self) -> bool:
        """Whether the next problem will be listed (worth the cost of a hint)."""
        return len(self.listed) < MAX_PROBLEMS

    def mark(self) -> int:
        return len(self.listed)

    def since(self, mark: int) -> bool:
        """Whether there may be problems since ``mark``: unlisted ones are not placed."""
        return len(self.listed) > mark or self.unlisted > 0

    def raise_if_any(self) -> None:
        if not self.since(0):
            return
        lines = list(self.listed)
        if self.unlisted:
            lines.append(f"... and {self.unlisted} more problem(s) not listed")
        raise ConfigError(lines)
