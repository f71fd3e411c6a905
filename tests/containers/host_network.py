"""What a private dockerd changes on the host network, how to undo it, and how to tell it is undone.

dockerd adds iptables chains and rules, turns on IP forwarding and creates the docker0
bridge. The compose test snapshots all of that before it starts its engine, restores it
afterwards and fails if anything is left.

Comparing iptables-save text as it is does not work: on a fresh machine no table has ever
been loaded and iptables-save prints nothing, but once dockerd has used the filter and nat
tables they stay, empty and with ACCEPT policies, after every rule is gone. Packets see no
difference between the two, so the comparison goes through `iptables_state`, which reduces
the text to what filters packets: rules, user-defined chains and policies other than ACCEPT.
"""

import subprocess
from pathlib import Path

# The iptables families a dockerd may change. dockerd 20.10 (Debian bookworm) writes IPv6
# rules only with --ip6tables; newer releases do it by default, so both are checked.
SAVE_COMMANDS = {"iptables": "iptables-save", "ip6tables": "ip6tables-save"}
RESTORE_COMMANDS = {"iptables": "iptables-restore", "ip6tables": "ip6tables-restore"}
FORWARDING = [Path("/proc/sys/net/ipv4/ip_forward"), Path("/proc/sys/net/ipv6/conf/all/forwarding")]
BRIDGE = Path("/sys/class/net/docker0")
INTERFACES = Path("/sys/class/net")
# What dockerd names the interfaces it makes for user networks (a compose project's) and
# for containers; docker0 is checked on its own.
DOCKER_INTERFACE_PREFIXES = ("br-", "veth")


def iptables_state(saved: str) -> dict[str, dict[str, tuple[str, tuple[str, ...]]]]:
    """Reduce iptables-save output to what filters packets: {table: {chain: (policy, rules)}}.

    Comment lines and packet counters are dropped. A built-in chain with an ACCEPT policy
    and no rules is left out, and so is a table with nothing else: such a chain passes
    every packet, exactly as if its table had never been loaded. User-defined chains (whose
    policy iptables-save prints as "-") always count, empty or not.
    """
    tables: dict[str, dict[str, tuple[str, list[str]]]] = {}
    chains: dict[str, tuple[str, list[str]]] = {}
    for number, raw in enumerate(saved.splitlines(), start=1):
        line = _without_counters(raw.strip())
        if not line or line.startswith("#") or line == "COMMIT":
            continue
        if line.startswith("*"):
            chains = tables.setdefault(line[1:], {})
        elif line.startswith(":"):
            name, policy = line[1:].split()[:2]
            chains[name] = (policy, [])
        elif line.startswith("-A "):
            chain = line.split()[1]
            if chain not in chains:
                raise ValueError(f"iptables-save line {number} adds a rule to undeclared chain {chain}: {raw!r}")
            chains[chain][1].append(line)
        else:
            raise ValueError(f"iptables-save line {number} is not a table, chain, rule or comment: {raw!r}")
    state = {}
    for table, table_chains in tables.items():
        kept = {
            name: (policy, tuple(rules))
            for name, (policy, rules) in table_chains.items()
            if rules or policy != "ACCEPT"
        }
        if kept:
            state[table] = kept
    return state


def state_difference(before: dict, after: dict) -> list[str]:
    """What `after` has that `before` lacks ("+ ...") and the reverse ("- ..."), one line each."""
    old, new = _flatten(before), _flatten(after)
    return [f"- {line}" for line in old if line not in new] + [f"+ {line}" for line in new if line not in old]


def restore_script(snapshot: str, current: str) -> str:
    """iptables-restore input that puts `snapshot` back while `current` is loaded.

    iptables-restore rewrites only the tables its input names. A table that exists now but
    was not in the snapshot (dockerd loaded it) is given as empty, with its built-in chains
    set to ACCEPT, so that whatever dockerd put there is removed too.
    """
    in_snapshot = _table_names(snapshot)
    script = snapshot if snapshot.endswith("\n") or not snapshot else snapshot + "\n"
    for table, chains in _declared_chains(current).items():
        if table in in_snapshot:
            continue
        built_in = [name for name, policy in chains if policy != "-"]
        script += f"*{table}\n" + "".join(f":{name} ACCEPT [0:0]\n" for name in built_in) + "COMMIT\n"
    return script


class HostNetworkState:
    """A snapshot of the host network state that dockerd changes, to restore and compare."""

    def __init__(
        self,
        saved: dict[str, str],
        forwarding: dict[Path, str],
        had_bridge: bool,
        interfaces: frozenset[str] | None = None,
    ):
        self.saved = saved
        self.forwarding = forwarding
        self.had_bridge = had_bridge
        self.interfaces = interfaces

    @classmethod
    def capture(cls) -> "HostNetworkState":
        saved = {family: _save(family) for family in SAVE_COMMANDS}
        forwarding = {path: path.read_text() for path in FORWARDING if path.exists()}
        saved_tables = {family: text for family, text in saved.items() if text is not None}
        return cls(saved_tables, forwarding, BRIDGE.exists(), interface_names())

    def new_docker_interfaces(self) -> list[str]:
        """Bridges and veths of Docker's naming that were not there at capture."""
        if self.interfaces is None:
            return []
        return sorted(
            name for name in interface_names() - self.interfaces if name.startswith(DOCKER_INTERFACE_PREFIXES)
        )

    def restore(self) -> None:
        """Put back the iptables tables, forwarding switches and bridge as they were captured."""
        for family, snapshot in self.saved.items():
            script = restore_script(snapshot, _save(family) or "")
            if script:
                subprocess.run([RESTORE_COMMANDS[family]], input=script, text=True, check=True)
        for path, value in self.forwarding.items():
            if path.read_text() != value:
                path.write_text(value)
        if not self.had_bridge and BRIDGE.exists():
            subprocess.run(["ip", "link", "delete", "docker0"], check=True)
        for name in self.new_docker_interfaces():
            subprocess.run(["ip", "link", "delete", name], check=False)

    def leftovers(self) -> list[str]:
        """Every difference between now and the snapshot, as lines a person can read; empty when none."""
        found = []
        for family, snapshot in self.saved.items():
            before, after = iptables_state(snapshot), iptables_state(_save(family) or "")
            if before != after:
                # The same lines in another order still filter differently.
                found += [f"{family}: {line}" for line in state_difference(before, after) or ["rules reordered"]]
        found += [
            f"{path} is {path.read_text().strip()}, was {value.strip()}"
            for path, value in self.forwarding.items()
            if path.read_text() != value
        ]
        if BRIDGE.exists() and not self.had_bridge:
            found.append("the docker0 bridge is still there")
        found += [f"the network interface {name} is still there" for name in self.new_docker_interfaces()]
        return found


def interface_names() -> frozenset[str]:
    """The network interfaces of this host (its network namespace) right now."""
    return frozenset(path.name for path in INTERFACES.iterdir())


def _save(family: str) -> str | None:
    """The output of iptables-save or ip6tables-save, or None where that program is missing."""
    try:
        result = subprocess.run([SAVE_COMMANDS[family]], capture_output=True, text=True, check=True)
    except FileNotFoundError:
        return None
    return result.stdout


def _without_counters(line: str) -> str:
    """A chain or rule line without its [packets:bytes] counters (iptables-save -c puts them first on rules)."""
    if line.startswith("[") and "]" in line:
        line = line.split("]", 1)[1].strip()
    if line.startswith(":") and line.endswith("]") and " [" in line:
        line = line.rsplit(" [", 1)[0]
    return line


def _table_names(saved: str) -> set[str]:
    return {line.strip()[1:] for line in saved.splitlines() if line.strip().startswith("*")}


def _declared_chains(saved: str) -> dict[str, list[tuple[str, str]]]:
    """{table: [(chain, policy), ...]} as iptables-save declares them."""
    tables: dict[str, list[tuple[str, str]]] = {}
    table = None
    for raw in saved.splitlines():
        line = _without_counters(raw.strip())
        if line.startswith("*"):
            table = tables.setdefault(line[1:], [])
        elif line.startswith(":") and table is not None:
            name, policy = line[1:].split()[:2]
            table.append((name, policy))
    return tables


def _flatten(state: dict) -> list[str]:
    lines = []
    for table, chains in sorted(state.items()):
        for name, (policy, rules) in sorted(chains.items()):
            lines.append(f"*{table} :{name} {policy}")
            lines += [f"*{table} {rule}" for rule in rules]
    return lines
