"""Stars: a component of flow classes around one shared tight link, re-divided in O(1) per change.

A *star* is the component of a tight link `link` whose classes cross it once and have no other tight
link except *private* ones (no other class in flight crosses them): a server link under many Wi-Fi
cells, each cell busy with one class. Each member is held by its *bound* (its own cap, or its share
of its private links) or by the link's fair share λ; :func:`~simulator.network.sharing.star_levels`
gives the same floats as the filling from the members' transfers per bound value, in O(distinct
bounds). Members at λ (the *λ group*) read the star's clock, so a change moves λ alone; members
held lower keep rates of their own, which change only when their bound does.

Members of the λ group are booked on their slack links at a ceiling Λ ≥ λ (checked, O(members),
only when λ passes it), so that λ moves without touching them; the others at their rates.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from typing import Any, Iterable

from simulator.network.levels import MovingLevel
from simulator.network.sharing import INF, star_levels

SLACK_MARGIN = 1e-6


class Star:
    """A star's state (the network uses a subclass that is also the λ group's clock)."""

    def __init__(self, link: Any) -> None:
        self.link = link
        self.rate_bps = 0.0  # λ
        self.members: dict[Any, int] = {}  # class → its transfers, as counted here
        self.bound_of: dict[Any, float] = {}  # class → its bound
        self.by_bound: dict[float, dict[Any, None]] = {}  # bound → its classes
        self.transfers_at: dict[float, int] = {}  # bound → their transfers
        self.bounds: list[float] = []  # the keys of transfers_at, sorted
        self.transfers = 0  # Σ transfers_at
        self.below: dict[float, float] = {}  # bound → level, for bounds held below λ
        self.level = MovingLevel()  # the λ group in the levels: its count is the group's members
        self.ceiling = 0.0  # Λ


class StarSharing:
    """The star half of :class:`~simulator.network.incremental.Sharing` (see that module)."""

    busy: dict
    levels: Any
    _new_star: Any

    # ------------------------------------------------------------------ membership

    def _private_bound(self, flow_class: Any, link: Any) -> float | None:
        """The class's bound in a star on `link`: its own, or its share of its other tight links if
        it is alone on each; None if it cannot be a member (it shares another tight link)."""
        bound = flow_class.own_bound
        active = flow_class.active
        crossed = 0
        for other in self._tight(flow_class):  # type: ignore[attr-defined]
            if other is link:
                crossed += 1
            elif len(other.users) != 1:
                return None
            else:
                share = other.capacity_bps / active
                if share < bound:
                    bound = share
        return bound if crossed == 1 and flow_class.distinct_links else None

    def _add_member(self, star: Star, flow_class: Any, bound: float) -> None:
        star.members[flow_class] = flow_class.active
        star.bound_of[flow_class] = bound
        star.by_bound.setdefault(bound, {})[flow_class] = None
        transfers_at = star.transfers_at
        before = transfers_at.get(bound)
        if before is None:
            insort(star.bounds, bound)
            before = 0
        transfers_at[bound] = before + flow_class.active
        star.transfers += flow_class.active
        flow_class.hub = star

    def _remove_member(self, star: Star, flow_class: Any) -> None:
        bound = star.bound_of.pop(flow_class)
        transfers = star.members.pop(flow_class)
        group = star.by_bound[bound]
        del group[flow_class]
        if not group:
            del star.by_bound[bound]
            del star.transfers_at[bound]
            bounds = star.bounds
            del bounds[bisect_left(bounds, bound)]
        else:
            star.transfers_at[bound] -= transfers
        star.transfers -= transfers
        flow_class.hub = None

    def _recount_member(self, star: Star, flow_class: Any) -> None:
        """:meth:`_remove_member` then :meth:`_add_member` at the same bound, without the sorted
        insert: the member goes last in the star's orders (its members, its bound's group and, if it is
        alone at its bound, the order of bounds), as it would out and in again."""
        bound = star.bound_of[flow_class]
        transfers = star.members.pop(flow_class)
        star.members[flow_class] = flow_class.active
        group = star.by_bound[bound]
        if len(group) == 1:
            del star.by_bound[bound]
            star.by_bound[bound] = group
        else:
            del group[flow_class]
            group[flow_class] = None
        star.transfers_at[bound] += flow_class.active - transfers
        star.transfers += flow_class.active - transfers

    def _status(self, star: Star, flow_class: Any) -> float | None:
        """The member's level if held below λ, None if in the λ group."""
        return star.below.get(star.bound_of[flow_class])

    # ------------------------------------------------------------------ changes

    def _star_change(self, star: Star, flow_class: Any) -> bool:
        """A member's transfers changed (still > 0): re-place it and settle; False if no star."""
        link = star.link
        tight = flow_class.tight if flow_class.tight_valid else self._tight(flow_class)  # type: ignore[attr-defined]
        if len(tight) == 1 and tight[0] is link and flow_class.distinct_links:
            bound = flow_class.own_bound  # (_private_bound when the star's link is its only tight one)
        else:
            bound = self._private_bound(flow_class, link)
            if bound is None:
                self._dissolve(star)
                return False
        if not star.below and star.bound_of[flow_class] == bound:
            return self._recount_in_lambda(star, flow_class)
        was = self._status(star, flow_class)
        if was is not None:  # (a member of the λ group stays counted at λ: _settle_star unplaces it if it moves)
            self._unplace(star, flow_class, was)
        if star.bound_of[flow_class] == bound:
            self._recount_member(star, flow_class)
        else:
            self._remove_member(star, flow_class)  # (and in again last: the order members are re-placed
            self._add_member(star, flow_class, bound)  # in orders the timers of one instant)
        return self._settle_star(star, ((flow_class, was),), flow_class if was is None else None)

    def _recount_in_lambda(self, star: Star, flow_class: Any) -> bool:
        """:meth:`_star_change` of a member of the λ group whose bound stays, no bound held below λ:
        nine changes in ten on a fleet of 1,000 cells under one server link. The same steps and floats
        as :meth:`_settle_star` with the member counted, written out for this case (it and the general
        steps around it were a third of that fleet's loop); anything else goes the general way."""
        self._recount_member(star, flow_class)
        users = star.transfers
        # star_levels' first step: if the lowest bound is not below the link's fair share, nothing is
        # held below λ and λ is that share (the same float star_levels returns)
        share = star.link.capacity_bps / users
        if star.bounds[0] < share:
            return self._settle_star(star, ((flow_class, None),), flow_class)
        if share != star.rate_bps:
            self._set_lambda(star, share)
        ceiling = star.ceiling
        overflow = self._book(flow_class, flow_class.active * ceiling)  # type: ignore[attr-defined]
        if overflow or not ceiling / 4 <= share <= ceiling:
            movers: dict = {}
            settled = self._new_ceiling(star, share, overflow, movers)
            if settled is None:
                return self._settle_star(star, tuple(movers.items()))
            if not settled:
                return False
        if self.levels.ties:
            self._divide(list(star.link.users))  # type: ignore[attr-defined]
        return True

    def _join_star(self, flow_class: Any, star: Star, bound: float) -> bool:
        """A class that came in flight on a star's link (its other tight links private) joins it."""
        self.levels.count(flow_class.rate_bps, -1)
        self._add_member(star, flow_class, bound)
        return self._settle_star(star, ((flow_class, "new"),))

    def _leave_star(self, star: Star, flow_class: Any) -> bool:
        """A member left (nothing in flight): out of the star, which settles; False if no star."""
        self._unplace(star, flow_class, self._status(star, flow_class))
        self._remove_member(star, flow_class)
        self._move(flow_class, None)  # type: ignore[attr-defined]
        flow_class.rate_bps = 0.0
        self.levels.count(0.0, 1)
        self._book(flow_class, 0.0)  # type: ignore[attr-defined]
        if not star.members:
            star.link.star = None
            return True
        return self._settle_star(star, ())

    def _unplace(self, star: Star, flow_class: Any, was: float | None) -> None:
        """Take a member's count off the levels before it is placed again."""
        if was is None:
            self.levels.count_level(star.level, -1)
        else:
            self.levels.count(was, -1)

    def _set_lambda(self, star: Star, rate: float) -> None:
        """λ moves: the report keeps the star's rate before (its clock ran at it), its level moves."""
        self.old.setdefault(star, star.rate_bps)  # type: ignore[attr-defined]
        self.levels.move_level(star.level, rate)
        star.rate_bps = rate

    def _settle_star(self, star: Star, changed: tuple, counted: Any = None) -> bool:
        """Re-divide the star; `changed` = (member, its former status or "new"), already unplaced but
        for `counted`, a member of the λ group still counted there: if it stays in the λ group and no
        bound's level moves (the usual change), only λ moves and it is only booked again (the levels
        end as if it had been unplaced and placed again). False (the star dissolved) if its link no
        longer binds or a slack link overflows."""
        movers = dict(changed)
        while True:
            below, rate = star_levels(star.link.capacity_bps, star.transfers_at, star.bounds, star.transfers)
            if counted is not None and rate != INF and below == star.below and counted.hub is star \
                    and below.get(star.bound_of[counted]) is None:
                if rate != star.rate_bps:
                    self._set_lambda(star, rate)
                overflow = self._book(counted, counted.active * star.ceiling)  # type: ignore[attr-defined]
            else:
                if counted is not None:
                    self._unplace(star, counted, None)
                if rate == INF:
                    self._dissolve(star, unplaced=movers)
                    return False
                old_below = star.below
                for bound, group in star.by_bound.items() if old_below != below else ():  # (equal: none moves)
                    was, now = old_below.get(bound), below.get(bound)
                    if was != now:  # this bound's classes move, in the members' order
                        for flow_class in group:
                            if flow_class not in movers:
                                self._unplace(star, flow_class, was)
                                movers[flow_class] = was
                star.below = below
                if rate != star.rate_bps:
                    self._set_lambda(star, rate)
                overflow = self._place_all(star, movers)
            movers = {}
            counted = None
            if overflow or not star.ceiling / 4 <= rate <= star.ceiling:
                settled = self._new_ceiling(star, rate, overflow, movers)
                if settled is None:
                    continue
                if not settled:
                    return False
            if self.levels.ties:
                self._divide(list(star.link.users))  # type: ignore[attr-defined]
            return True

    def _new_ceiling(self, star: Star, rate: float, overflow: list[Any], movers: dict) -> bool | None:
        """Λ afresh (2λ, or less where a slack link has no more room): λ passed it, fell far below
        it, or a booking overflowed. True if the star stands; False if it dissolved; None if members
        are held by slack links that turned tight (they are in `movers`, to be re-placed)."""
        lam = [c for c in star.members if c.star is star]
        ceiling, full = self._ceiling_for(lam, rate)
        if full:  # slack links the λ group cannot fill at λ: tight, their members held there
            if not self._hold(star, full, movers):
                self._dissolve(star, full, movers)
                return False
            return None
        star.ceiling = ceiling
        for flow_class in lam:
            self._book(flow_class, flow_class.active * ceiling)  # type: ignore[attr-defined]
        overflow = [x for x in overflow if not x.load_bps * (1 + SLACK_MARGIN) < x.capacity_bps]
        if overflow:
            self._dissolve(star, overflow)
            return False
        return True

    def _hold(self, star: Star, full: list[Any], movers: dict) -> bool:
        """Slack links the λ group cannot fill at λ turn tight. Each must be crossed by one member
        alone (its access point, say): that member is then held by its share of it (re-placed, in
        `movers`). Otherwise the star is no star: False (the caller dissolves it)."""
        for link in full:
            users = [c for c in link.users if c.active]
            if len(users) != 1 or users[0].hub is not star:
                return False
        for link in full:
            self._set_tight(link)  # type: ignore[attr-defined]
        for link in full:
            flow_class = next(c for c in link.users if c.active)
            bound = self._private_bound(flow_class, star.link)
            if bound is None:
                return False
            if flow_class not in movers:
                was = self._status(star, flow_class)
                self._unplace(star, flow_class, was)
                movers[flow_class] = was
            self._remove_member(star, flow_class)
            self._add_member(star, flow_class, bound)
        return True

    def _place_all(self, star: Star, movers: dict) -> list[Any]:
        """Put each mover in the λ group or at its level, counted and booked; returns overflows."""
        overflow: list[Any] = []
        for flow_class, was in movers.items():
            now = self._status(star, flow_class)
            if now is None:
                self.levels.count_level(star.level, 1)
                if flow_class.star is not star:
                    self._move(flow_class, star)  # type: ignore[attr-defined]
                load = flow_class.active * star.ceiling
            else:
                self.levels.count(now, 1)
                if flow_class.star is not None:
                    self._move(flow_class, None)  # type: ignore[attr-defined]
                elif was == "new" or now != flow_class.rate_bps:
                    self._note(flow_class)  # type: ignore[attr-defined]
                flow_class.rate_bps = now
                load = flow_class.active * now
            overflow.extend(self._book(flow_class, load))  # type: ignore[attr-defined]
        return overflow

    # ------------------------------------------------------------------ forming and dissolving

    def _form_star(self, component: list[Any], tight: list[tuple]) -> None:
        """Make the component a star if it is one: a tight link every class crosses once, their
        other tight links private, and the link binding (some class at its fair share)."""
        link = next((x for x in tight[0] if all(x in t for t in tight)), None)
        if link is None:
            return
        bounds = [self._private_bound(c, link) for c in component]
        if any(b is None for b in bounds):
            return
        star = self._new_star(link)
        for flow_class, bound in zip(component, bounds):
            self._add_member(star, flow_class, bound)
        star.below, rate = star_levels(link.capacity_bps, star.transfers_at, star.bounds, star.transfers)
        lam = [c for c in component if self._status(star, c) is None]
        same = all(c.rate_bps == star.below.get(b, rate) for c, b in zip(component, bounds))  # as filled
        ceiling, full = self._ceiling_for(lam, rate) if rate != INF and same else (0.0, [None])
        if full:
            for flow_class in component:
                flow_class.hub = None
            return
        star.rate_bps, star.ceiling = rate, ceiling
        link.star = star
        self.levels.move_level(star.level, rate)
        if lam:  # counted at λ, each on its own rate (the same float): the star's level from now on
            self.levels.count(rate, -len(lam))
            self.levels.count_level(star.level, len(lam))
        for flow_class in lam:  # their own rates are λ already (the same floats): now its clock's
            self._move(flow_class, star)  # type: ignore[attr-defined]
            self._book(flow_class, flow_class.active * ceiling)  # type: ignore[attr-defined]

    def _dissolve(self, star: Star, overflow: list[Any] | None = None, unplaced: Iterable[Any] = ()) -> None:
        """Every member back on its own rate (λ, for the λ group), booked at it; the link has no
        star. A slack link without its margin now (or in `overflow`) turns tight: the caller
        re-divides the members. Members `unplaced` (their counts taken off the levels) are counted
        again, at their own rates."""
        star.link.star = None
        in_lambda = star.level.count
        if in_lambda:  # the λ group back on rates of their own, λ: counted per value again
            self.levels.count(star.rate_bps, in_lambda)
            self.levels.count_level(star.level, -in_lambda)
        crossed: dict[int, Any] = {id(x): x for x in overflow or ()}
        for flow_class in list(star.members):
            if flow_class.star is star:
                self._move(flow_class, None)  # type: ignore[attr-defined]
                flow_class.rate_bps = star.rate_bps
                self._book(flow_class, flow_class.active * star.rate_bps)  # type: ignore[attr-defined]
            flow_class.hub = None
            for link in flow_class.links:
                crossed[id(link)] = link
        star.members.clear()
        for flow_class in unplaced:
            self.levels.count(flow_class.rate_bps, 1)
        for link in crossed.values():
            if link.slack and not link.load_bps * (1 + SLACK_MARGIN) < link.capacity_bps:
                self._set_tight(link)  # type: ignore[attr-defined]

    # ------------------------------------------------------------------ the ceiling Λ

    def _ceiling_for(self, lam_members: list[Any], rate: float) -> tuple[float, list[Any]]:
        """The highest Λ ≤ 2λ at which every slack link the λ group crosses keeps twice the margin,
        everything else booked as it is; and the links on which λ itself does not fit."""
        weight: dict[int, list[Any]] = {}  # link → [link, the group's transfers on it, their booking]
        for flow_class in lam_members:
            for link in flow_class.links:
                if link.slack and not link.never_binds:
                    entry = weight.setdefault(id(link), [link, 0, 0.0])
                    entry[1] += flow_class.active
                    entry[2] += flow_class.load_bps
        limit = 2 * rate
        full = []
        for link, transfers, booked in weight.values():
            if transfers:  # (a member left at this instant and not yet taken out has none)
                room = (link.capacity_bps / (1 + 2 * SLACK_MARGIN) - (link.load_bps - booked)) / transfers
                if room < rate:
                    full.append(link)
                elif room < limit:
                    limit = room
        return limit, full
