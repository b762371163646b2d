"""A small reader of nginx configuration, enough to compare the gateway's renderings: blocks,
directives and their arguments (quoted strings kept whole)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_TOKEN = re.compile(r"""'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|[{};]|[^\s{};'"]+""")


@dataclass
class Directive:
    name: str
    args: list[str]
    block: list[Directive] | None = None

    def all(self, name: str) -> list[Directive]:
        return [d for d in self.block or [] if d.name == name]

    def values(self, name: str) -> list[list[str]]:
        return [d.args for d in self.all(name)]


@dataclass
class Config:
    directives: list[Directive] = field(default_factory=list)

    @property
    def http(self) -> Directive:
        [http] = [d for d in self.directives if d.name == "http"]
        return http


def _unquote(token: str) -> str:
    if len(token) >= 2 and token[0] == token[-1] and token[0] in "'\"":
        return token[1:-1]
    return token


def parse(text: str) -> Config:
    lines = [line.split("#", 1)[0] if not _in_quotes(line) else line for line in text.splitlines()]
    tokens = _TOKEN.findall("\n".join(lines))
    stack: list[list[Directive]] = [[]]
    current: list[str] = []
    for token in tokens:
        if token == ";":
            stack[-1].append(Directive(current[0], [_unquote(t) for t in current[1:]]))
            current = []
        elif token == "{":
            directive = Directive(current[0], [_unquote(t) for t in current[1:]], [])
            stack[-1].append(directive)
            assert directive.block is not None
            stack.append(directive.block)
            current = []
        elif token == "}":
            assert not current, f"unterminated directive {current}"
            stack.pop()
        else:
            current.append(token)
    assert len(stack) == 1 and not current, "unbalanced configuration"
    return Config(stack[0])


def _in_quotes(line: str) -> bool:
    # A '#' inside a quoted string (none in the gateway today) is not a comment.
    head = line.split("#", 1)[0]
    return head.count("'") % 2 == 1 or head.count('"') % 2 == 1


def public_server(config: Config) -> Directive:
    """The server block that proxies the API (the one with proxy_pass locations)."""
    servers = [
        s
        for s in config.http.all("server")
        if any(loc.values("proxy_pass") for loc in s.all("location"))
    ]
    [server] = servers
    return server


def routes(config: Config) -> dict[tuple[str, str], str]:
    """(match, path) -> the service the public server proxies it to, from proxy_pass."""
    found = {}
    for location in public_server(config).all("location"):
        if location.args[0].startswith("@") or location.args == ["/"]:
            continue
        [[target]] = location.values("proxy_pass")
        found[(location.args[0], location.args[1])] = _service_of(target)
    return found


def _service_of(proxy_pass: str) -> str:
    # http://registration (static upstream) or http://$backend_registration (resolved)
    name = proxy_pass.removeprefix("http://").removeprefix("$backend_")
    return name.replace("_", "-")
