"""A star's heap of member heads: which of its members completes next, and completing those due.

Why a heap: the members of a star's λ group read one clock (flows.LinkLevel), so the next of their
transfers to finish is the smallest head position (finish tag − the member's offset) among hundreds
of members; the star's one timer is armed at it. Entries are ``(position, sequence, member)``;
an entry whose sequence is no longer its member's (``entry_seq``), or whose member left the λ group,
is stale and dropped where it is met. No SimPy here: the network (network.py) arms the timer.
"""

from __future__ import annotations

from heapq import heappop, heappush
from itertools import count
from operator import attrgetter

from simulator.network.flows import FlowClass, LinkLevel
from simulator.network.sharing import REL_EPS


def push_head(flow_class: FlowClass, star: LinkLevel, sequence: count) -> bool:
    """Enter a member's head in its star's heap, with a new sequence: members whose heads are due
    at one instant complete in the order of these sequences, which orders that instant's rows.
    An entry already in the heap at the same position stands (a start behind the head moves
    nothing): :func:`complete_members` orders equal positions by the newest sequence. True if it
    entered one (the star's earliest head may be earlier now)."""
    queue = flow_class.queue
    tag = queue[0][0] if queue and not queue[0][2].cancelled else flow_class.head_tag()  # (its usual case inline)
    if tag is None:
        flow_class.member_seq = flow_class.entry_seq = -1
        return False
    seq = flow_class.member_seq = next(sequence)
    position = tag - flow_class.offset
    if flow_class.entry_seq >= 0 and flow_class.entry_star is star and flow_class.entry_position == position:
        return False
    flow_class.entry_seq, flow_class.entry_star, flow_class.entry_position = seq, star, position
    heappush(star.heads, (position, seq, flow_class))
    return True


def star_due(star: LinkLevel, now: float) -> float | None:
    """When the star's earliest head is due (stale heads dropped), its clock reading now; None if
    it has none or rate 0."""
    heads = star.heads
    while heads and (heads[0][2].star is not star or heads[0][2].entry_seq != heads[0][1]):
        _drop(heappop(heads))
    rate = star.rate_bps
    if not heads or rate <= 0:
        return None
    remaining_bits = heads[0][0] - star.virtual_bits
    return now + (remaining_bits if remaining_bits > 0.0 else 0.0) / rate


def complete_members(star: LinkLevel) -> list[FlowClass]:
    """The members of `star` whose head is due at its clock now: complete their due transfers,
    in the order of (position, member sequence)."""
    heads = star.heads
    virtual_bits = star.virtual_bits
    changed: list[FlowClass] = []
    while heads:
        position, seq, flow_class = heads[0]
        if flow_class.star is not star or flow_class.entry_seq != seq:
            _drop(heappop(heads))
            continue
        size = len(heads)
        if (size > 1 and heads[1][0] == position) or (size > 2 and heads[2][0] == position):
            if _complete_tied(star, changed):  # (the next smallest is heads[1] or heads[2])
                continue
            break
        offset = flow_class.offset
        tag = position + offset
        if tag - (virtual_bits + offset) > REL_EPS * (tag if tag > 1.0 else 1.0):  # not _due, inline
            break
        heappop(heads)
        flow_class.member_seq = flow_class.entry_seq = -1
        flow_class.complete_due(virtual_bits + offset)
        changed.append(flow_class)
    return changed


def _complete_tied(star: LinkLevel, changed: list[FlowClass]) -> bool:
    """:func:`complete_members` of the members at the smallest position, several: in the order
    of their member sequences (their entries may be older). False if one is not due: it and
    those after it go back in the heap."""
    heads = star.heads
    position = heads[0][0]
    tied = []
    while heads and heads[0][0] == position:
        entry = heappop(heads)
        flow_class = entry[2]
        if flow_class.star is star and flow_class.entry_seq == entry[1]:
            tied.append(flow_class)
        else:
            _drop(entry)
    tied.sort(key=attrgetter("member_seq"))
    virtual_bits = star.virtual_bits
    for i, flow_class in enumerate(tied):
        if not _due(position + flow_class.offset, virtual_bits + flow_class.offset):
            for rest in tied[i:]:
                heappush(heads, (position, rest.entry_seq, rest))
            return False
        flow_class.member_seq = flow_class.entry_seq = -1
        flow_class.complete_due(virtual_bits + flow_class.offset)
        changed.append(flow_class)
    return True


def _due(tag: float, virtual_bits: float) -> bool:
    """A finish tag reached by a clock reading `virtual_bits` (FlowClass.complete_due's test)."""
    return not tag - virtual_bits > REL_EPS * (tag if tag > 1.0 else 1.0)


def _drop(entry: tuple[float, int, FlowClass]) -> None:
    """A heap entry taken out as stale: if it was its class's entry, the class has none now."""
    if entry[2].entry_seq == entry[1]:
        entry[2].entry_seq = -1
