"""Template actions (WebShop's `search[<your query>]`) under agent.validity=admissible: any non-empty query
is a valid action. (Under `format`, verl-agent's rule, no action is matched: test_projection_validity.py.)"""

from __future__ import annotations

from hgpo_cli.agent.projection import project_action
from hgpo_cli.envs.webshop.actions import SEARCH_TEMPLATE, is_admissible

PAGE = [SEARCH_TEMPLATE, "click[back to search]"]


def test_a_filled_search_template_is_valid_and_keeps_the_query():
    action, valid = project_action(
        "<think>shoes</think><action> search[  red   running Shoes ] </action>", PAGE, validity="admissible"
    )
    assert (action, valid) == ("search[red running Shoes]", True)
    assert is_admissible(action, PAGE)


def test_the_template_name_matches_case_insensitively():
    assert project_action("<action>Search[blue mug]</action>", PAGE, validity="admissible") == (
        "search[blue mug]",
        True,
    )


def test_empty_or_malformed_queries_are_invalid():
    assert project_action("<action>search[]</action>", PAGE, validity="admissible")[1] is False
    assert project_action("<action>search[   ]</action>", PAGE, validity="admissible")[1] is False
    assert project_action("<action>search[red shoes</action>", PAGE, validity="admissible")[1] is False
    assert project_action("<action>search[a[b]]</action>", PAGE, validity="admissible")[1] is False


def test_no_template_on_the_page_means_search_is_not_admissible():
    assert project_action("<action>search[red shoes]</action>", ["click[back to search]"], validity="admissible") == (
        "search[red shoes]",
        False,
    )


def test_exact_listed_actions_still_win():
    assert project_action("<action>CLICK[Back to Search]</action>", PAGE, validity="admissible") == (
        "click[back to search]",
        True,
    )
