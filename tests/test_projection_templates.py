"""Template actions (WebShop's `search[<your query>]`): any non-empty query is a valid action."""

from __future__ import annotations

from hgpo_cli.agent.projection import project_action
from hgpo_cli.envs.webshop.actions import SEARCH_TEMPLATE, is_admissible

PAGE = [SEARCH_TEMPLATE, "click[back to search]"]


def test_a_filled_search_template_is_valid_and_keeps_the_query():
    action, valid = project_action("<think>shoes</think><action> search[  red   running Shoes ] </action>", PAGE)
    assert (action, valid) == ("search[red running Shoes]", True)
    assert is_admissible(action, PAGE)


def test_the_template_name_matches_case_insensitively():
    assert project_action("<action>Search[blue mug]</action>", PAGE) == ("search[blue mug]", True)


def test_empty_or_malformed_queries_are_invalid():
    assert project_action("<action>search[]</action>", PAGE)[1] is False
    assert project_action("<action>search[   ]</action>", PAGE)[1] is False
    assert project_action("<action>search[red shoes</action>", PAGE)[1] is False
    assert project_action("<action>search[a[b]]</action>", PAGE)[1] is False


def test_no_template_on_the_page_means_search_is_not_admissible():
    assert project_action("<action>search[red shoes]</action>", ["click[back to search]"]) == (
        "search[red shoes]",
        False,
    )


def test_exact_listed_actions_still_win():
    assert project_action("<action>CLICK[Back to Search]</action>", PAGE) == ("click[back to search]", True)
