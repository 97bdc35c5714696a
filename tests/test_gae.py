"""Token-level GAE and verl's whitening, against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hgpo_cli.train.gae import gae_advantages_returns, masked_whiten, step_sample_gae, uses_critic


def test_gamma_lambda_one_gives_reward_minus_value_at_every_token() -> None:
    # verl-agent's PPO row (gamma = lam = 1): the reward 10 at the last of 3 tokens, values 1, 2, 3
    adv, ret = step_sample_gae([10.0], [[1.0, 2.0, 3.0]], gamma=1.0, lam=1.0, whiten=False)
    np.testing.assert_allclose(adv[0], [9.0, 8.0, 7.0])
    np.testing.assert_allclose(ret[0], [10.0, 10.0, 10.0])


def test_discounted_gae_by_hand() -> None:
    # row 0: values (1, 2), reward 4 at t=1; gamma = lam = 0.5
    #   t=1: delta = 4 + 0 - 2 = 2, A = 2;  t=0: delta = 0 + 0.5*2 - 1 = 0, A = 0 + 0.25*2 = 0.5
    # row 1: one token, value 3, reward -1: A = -4, return -1
    adv, ret = step_sample_gae([4.0, -1.0], [[1.0, 2.0], [3.0]], gamma=0.5, lam=0.5, whiten=False)
    np.testing.assert_allclose(adv[0], [0.5, 2.0])
    np.testing.assert_allclose(ret[0], [1.5, 4.0])
    np.testing.assert_allclose(adv[1], [-4.0])
    np.testing.assert_allclose(ret[1], [-1.0])
    # whitened over the 3 tokens: mean -0.5, deviations (1, 2.5, -3.5), unbiased var 19.5 / 2 = 9.75
    white, ret_w = step_sample_gae([4.0, -1.0], [[1.0, 2.0], [3.0]], gamma=0.5, lam=0.5)
    s = math.sqrt(9.75)
    np.testing.assert_allclose(np.concatenate(white), [1 / s, 2.5 / s, -3.5 / s], atol=1e-7)
    np.testing.assert_allclose(np.concatenate(ret_w), [1.5, 4.0, -1.0])  # returns are not whitened


def test_padded_recursion_matches_verl_layout() -> None:
    # left-aligned rows, zeros after the end: the padding never leaks into the response
    r = np.array([[0.0, 0.0, 1.0], [2.0, 0.0, 0.0]])
    v = np.array([[0.5, 0.5, 0.5], [1.0, 0.0, 0.0]])
    adv, ret = gae_advantages_returns(r, v, gamma=1.0, lam=1.0)
    np.testing.assert_allclose(adv[0], [0.5, 0.5, 0.5])
    assert adv[1, 0] == pytest.approx(1.0)
    np.testing.assert_allclose(ret, adv + v)


def test_masked_whiten_ignores_masked_entries() -> None:
    x = np.array([[1.0, 3.0, 100.0]])
    m = np.array([[1.0, 1.0, 0.0]])
    out = masked_whiten(x, m)
    # mean 2, unbiased var 2: (1 - 2) / sqrt(2), (3 - 2) / sqrt(2)
    np.testing.assert_allclose(out[0, :2], [-1 / math.sqrt(2), 1 / math.sqrt(2)], atol=1e-7)
    single = masked_whiten(np.array([[5.0]]), np.array([[1.0]]))
    assert abs(single[0, 0]) < 1e-6  # one token: centred only (verl raises)


def test_ppo_is_the_critic_algorithm() -> None:
    assert uses_critic("ppo") and not uses_critic("grpo")


def test_collate_takes_per_token_advantages_when_given() -> None:
    from hgpo_cli.train.batch import TrainSample, collate

    samples = [
        TrainSample([5, 6], [7, 8], advantage=9.0, token_advantages=[0.25, -0.5]),
        TrainSample([5], [7, 8, 9], advantage=-1.0),
    ]
    batch = collate(samples, pad_id=0)
    assert batch.advantages.tolist() == [[0.0, 0.25, -0.5], [-1.0, -1.0, -1.0]]


def test_attach_gae_sets_token_advantages_from_the_step_rewards() -> None:
    from hgpo_cli.train.batch import TrainSample
    from hgpo_cli.train.ppo_step import actor_trains, attach_gae

    # rewards 10 (a won episode) and -0.1 (a lost one, invalid step) sit in `advantage` on entry
    samples = [TrainSample([1], [2, 3], advantage=10.0), TrainSample([1], [4], advantage=-0.1)]
    returns, metrics = attach_gae(samples, [[1.0, 2.0], [0.0]], gamma=1.0, lam=1.0)
    assert returns == [[10.0, 10.0], [-0.1]]
    raw = np.array([9.0, 8.0, -0.1])  # reward - value at every token, then whitened over the 3 tokens
    white = (raw - raw.mean()) / raw.std(ddof=1)
    np.testing.assert_allclose(samples[0].token_advantages + samples[1].token_advantages, white, atol=1e-6)
    assert samples[1].advantage == pytest.approx(white[2])
    assert metrics["critic/returns_mean"] == pytest.approx((10 + 10 - 0.1) / 3)
    # verl's critic warmup: the actor trains at 1-based iteration i when warmup <= i
    assert actor_trains(1, 0) and actor_trains(1, 1) and not actor_trains(1, 2) and actor_trains(2, 2)
