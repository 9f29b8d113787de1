"""The agent hierarchy as arrays over a fixed pool of slots: parent, depth, alive, ordered children.

Slot ids are stable (an agent keeps its slot, and so its rows in the stacked weight arrays,
for its whole life), so add, remove and move are O(children) edits, never a rebuild.
The position of a child in its parent's `children` list is its column in the parent's router.
"""
from __future__ import annotations

import numpy as np

ROOT = 0


class Tree:
    """A rooted tree over `capacity` slots; slot 0 is the root and is always alive."""

    def __init__(self, capacity: int, max_depth: int, max_children: int):
        self.capacity, self.max_depth, self.max_children = capacity, max_depth, max_children
        self.parent = np.full(capacity, -1, dtype=np.int64)
        self.depth = np.zeros(capacity, dtype=np.int64)  # root has depth 0
        self.alive = np.zeros(capacity, dtype=bool)
        self.children: list[list[int]] = [[] for _ in range(capacity)]
        self.alive[ROOT] = True

    @classmethod
    def balanced(cls, levels: int, branching: int, capacity: int, max_depth: int, max_children: int):
        """A full tree with `levels` levels (root = level 0) and `branching` children per node."""
        tree = cls(capacity, max_depth, max_children)
        frontier = [ROOT]
        for _ in range(levels - 1):
            frontier = [tree.add_child(p) for p in frontier for _ in range(branching)]
        return tree

    # --- queries -------------------------------------------------------------------------
    def nodes(self) -> np.ndarray:
        """Alive slot ids."""
        return np.flatnonzero(self.alive)

    def is_leaf(self, n: int) -> bool:
        return not self.children[n]

    def leaves(self) -> list[int]:
        return [int(n) for n in self.nodes() if not self.children[n]]

    def column(self, n: int) -> int:
        """Position of n among its parent's children (its router column)."""
        return self.children[self.parent[n]].index(n)

    def subtree(self, n: int) -> list[int]:
        """n and all its descendants."""
        out, stack = [], [n]
        while stack:
            m = stack.pop()
            out.append(m)
            stack.extend(self.children[m])
        return out

    def children_table(self) -> tuple[np.ndarray, np.ndarray]:
        """Padded (capacity, max_children) child ids (-1 = none) and child counts, for vectorised routing."""
        table = np.full((self.capacity, self.max_children), -1, dtype=np.int64)
        counts = np.zeros(self.capacity, dtype=np.int64)
        for n in self.nodes():
            kids = self.children[n]
            table[n, :len(kids)] = kids
            counts[n] = len(kids)
        return table, counts

    def column_table(self) -> np.ndarray:
        """(capacity,) router column of each slot in its parent (-1 for the root and free slots)."""
        cols = np.full(self.capacity, -1, dtype=np.int64)
        for n in self.nodes():
            cols[self.children[n]] = np.arange(len(self.children[n]))
        return cols

    # --- edits ---------------------------------------------------------------------------
    def add_child(self, p: int) -> int:
        """Attach a new agent under p (as p's last router column); returns its slot."""
        if not self.alive[p]:
            raise ValueError(f"parent {p} is not alive")
        if self.depth[p] + 1 >= self.max_depth:
            raise ValueError(f"node {p} is at the depth limit")
        if len(self.children[p]) >= self.max_children:
            raise ValueError(f"node {p} already has {self.max_children} children")
        free = np.flatnonzero(~self.alive)
        if free.size == 0:
            raise ValueError("no free agent slot")
        n = int(free[0])
        self.alive[n], self.parent[n], self.depth[n] = True, p, self.depth[p] + 1
        self.children[n] = []
        self.children[p].append(n)
        return n

    def remove_leaf(self, n: int) -> int:
        """Delete leaf n; returns the router column it occupied in its parent."""
        if n == ROOT or not self.alive[n] or self.children[n]:
            raise ValueError(f"node {n} is not a removable leaf")
        p = int(self.parent[n])
        col = self.children[p].index(n)
        self.children[p].pop(col)
        self.alive[n], self.parent[n] = False, -1
        return col

    def can_move(self, n: int, new_parent: int) -> bool:
        """Whether n's subtree can hang under new_parent (no cycle, depth and fan-out limits)."""
        if n == ROOT or new_parent == self.parent[n] or not self.alive[new_parent]:
            return False
        sub = self.subtree(n)
        if new_parent in sub or len(self.children[new_parent]) >= self.max_children:
            return False
        shift = self.depth[new_parent] + 1 - self.depth[n]
        return int(self.depth[sub].max() + shift) < self.max_depth

    def move(self, n: int, new_parent: int) -> tuple[int, int]:
        """Re-hang n (with its subtree) under new_parent; returns (old column, new column)."""
        if not self.can_move(n, new_parent):
            raise ValueError(f"cannot move {n} under {new_parent}")
        old_p = int(self.parent[n])
        old_col = self.children[old_p].index(n)
        self.children[old_p].pop(old_col)
        shift = self.depth[new_parent] + 1 - self.depth[n]
        self.depth[self.subtree(n)] += shift
        self.parent[n] = new_parent
        self.children[new_parent].append(n)
        return old_col, len(self.children[new_parent]) - 1

    # --- persistence ---------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"capacity": self.capacity, "max_depth": self.max_depth, "max_children": self.max_children,
                "parent": self.parent.copy(), "depth": self.depth.copy(), "alive": self.alive.copy(),
                "children": [list(c) for c in self.children]}

    @classmethod
    def from_state(cls, s: dict) -> "Tree":
        tree = cls(int(s["capacity"]), int(s["max_depth"]), int(s["max_children"]))
        tree.parent[:] = s["parent"]
        tree.depth[:] = s["depth"]
        tree.alive[:] = s["alive"]
        tree.children = [list(map(int, c)) for c in s["children"]]
        return tree
