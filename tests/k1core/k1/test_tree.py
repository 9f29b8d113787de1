import numpy as np
import pytest

from k1core.k1.tree import Tree


def test_balanced_tree_shape_and_columns():
    t = Tree.balanced(3, 4, capacity=32, max_depth=4, max_children=6)
    assert t.alive.sum() == 21 and len(t.leaves()) == 16
    assert np.bincount(t.depth[t.alive]).tolist() == [1, 4, 16]
    cols = t.column_table()
    for n in t.nodes()[1:]:
        assert t.children[t.parent[n]][cols[n]] == n


def test_add_remove_move_edit_in_place():
    t = Tree.balanced(3, 2, capacity=10, max_depth=4, max_children=3)
    leaf = t.leaves()[0]
    c = t.add_child(leaf)
    assert t.parent[c] == leaf and t.depth[c] == 3 and not t.is_leaf(leaf)
    with pytest.raises(ValueError):
        t.add_child(c)  # depth limit
    assert t.remove_leaf(c) == 0 and t.is_leaf(leaf) and not t.alive[c]
    node = t.children[1][0]
    old_cols = t.move(node, 2)
    assert t.parent[node] == 2 and t.children[2][-1] == node and old_cols == (0, 2)
    assert not t.can_move(1, t.children[1][0])  # into its own subtree
    assert not t.can_move(0, 1)  # the root stays
    with pytest.raises(ValueError):
        t.remove_leaf(1)  # not a leaf


def test_move_shifts_subtree_depth_and_state_round_trips():
    t = Tree.balanced(3, 2, capacity=12, max_depth=4, max_children=3)
    assert not t.can_move(1, t.children[2][0])  # its children would fall below max_depth
    t.max_depth = 5
    sub = t.children[1][0]
    t.move(1, t.children[2][0])  # node 1 (with 2 children) two levels down
    assert t.depth[1] == 3 and t.depth[sub] == 4
    t2 = Tree.from_state(t.state_dict())
    assert t2.children == t.children and (t2.depth == t.depth).all() and (t2.parent == t.parent).all()


def test_no_free_slot_is_an_error():
    t = Tree.balanced(2, 3, capacity=4, max_depth=3, max_children=3)
    with pytest.raises(ValueError):
        t.add_child(1)
