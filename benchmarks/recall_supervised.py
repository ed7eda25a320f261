"""How hard is a cue recall for the agent's network itself? Train it by supervision, no RL.

    python benchmarks/recall_supervised.py --delay 15 --shuffled --seeds 0,1,2
    python benchmarks/recall_supervised.py --delay 30 --shuffled --observation-gate false
    python benchmarks/recall_supervised.py --delay 15 --shuffled --core lru --observation-gate true \
        --input-norm true --random-actions

The network of ``train_agent.py`` (torso, core, heads: ``ActorCritic.build`` with the config's
network options) reads whole ``CueRecall`` episodes and is trained with the cross-entropy of its
policy logits at the query step against the right answer, by Adam, one batch of fresh episodes per
step. It reports the episodes seen until the batch accuracy first reached ``--target``. The core
gets the program's ``refine_bias`` unless ``--core-option refine_bias=...`` says otherwise. The previous
action fed to the core is zero, or with ``--random-actions`` uniformly random as an RL policy at
chance feeds it (the previous reward is zero: before the query there is none). With ``--bandit`` the
loss is REINFORCE at the query instead of the cross-entropy: one sampled answer per episode, reward 1
if right, the batch's mean reward as the baseline, plus ``--entropy-cost`` times the policy's entropy
(0.01, the agent's default; without it the policy settles on one slot): the feedback an RL agent
gets, without the rest of RL (no value head, no losses at the delay steps, no unroll boundaries).
``--bandit-regression`` learns the same feedback by regression instead: each logit predicts whether
its answer is right (a binary cross-entropy on the answer sampled from the logits), the signal the
agent's ``--action-value-cost`` head gets. An RL agent
learns from one sampled action and a 0/1 reward per episode, so it cannot be expected to need fewer
episodes than this: a network that needs 100k episodes here will not learn the task within an RL
budget of 60k.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agents.networks import ActorCritic  # noqa: E402
from agents.seeds import benchmark_seed  # noqa: E402
from configs import CoreConfig, key_values  # noqa: E402
from cores import core_factory  # noqa: E402
from envs import make_vector_env  # noqa: E402


def episodes(env, batch: int, delay: int) -> tuple[dict, torch.Tensor]:
    """One batch of whole episodes: observations ``{key: [T, B, ...]}`` (T = delay + 2) and the
    right action at the query ``[B]``."""
    obs, _ = env.reset()
    steps = [obs]
    zeros = np.zeros(batch, dtype=np.int64)
    for _ in range(delay + 1):
        steps.append(env.step(zeros).obs)
    stacked = {k: torch.as_tensor(np.stack([s[k] for s in steps])) for k in steps[0]}
    cue = stacked["symbol"][0]
    if "candidates" in stacked:
        answer = (stacked["candidates"][-1] == cue[:, None]).float().argmax(-1)
    else:
        answer = cue - 1
    return stacked, answer


def episodes_to_learn(args, seed: int) -> tuple[int | None, float]:
    """Episodes until the batch accuracy first reached ``args.target`` (None: not within the budget),
    and the last batch's accuracy."""
    torch.manual_seed(seed)
    env_id = "ShuffledCueRecall-v0" if args.shuffled else "CueRecall-v0"
    env = make_vector_env(env_id, args.batch, benchmark_seed(seed), delay=args.delay, num_cues=args.num_cues)
    c = CoreConfig(core=args.core, hidden_size=args.hidden_size, observation_gate=args.observation_gate,
                   input_norm=args.input_norm, head_size=args.head_size, view_match=args.view_match)
    core = core_factory(c.core, c.hidden_size, args.core_options, refine_bias=c.refine_bias)
    model = ActorCritic.build(env.observation_description, args.num_cues, core, **c.network_options())
    optimizer = torch.optim.Adam(model.parameters(), lr=args.learning_rate)
    T, B = args.delay + 2, args.batch
    first = torch.zeros(T, B, dtype=torch.bool)
    first[0] = True
    no_action, no_reward = torch.zeros(T, B, dtype=torch.long), torch.zeros(T, B)
    accuracy, seen = 0.0, 0
    while seen < args.max_episodes:
        obs, answer = episodes(env, B, args.delay)
        # the previous-action input an RL agent feeds its core: uniform random actions (zero at the cue)
        last_action = torch.randint(args.num_cues, (T, B)) * (~first) if args.random_actions else no_action
        out, _ = model.unroll(obs, last_action, no_reward, first, model.initial_state(B))
        if args.bandit or args.bandit_regression:  # one sampled answer, reward 1 if right
            action = torch.distributions.Categorical(logits=out.logits[-1].detach()).sample()
            reward = (action == answer).float()
        if args.bandit:  # REINFORCE at the query, the batch's mean reward as the baseline
            log_probs = torch.log_softmax(out.logits[-1], -1)
            entropy = -(log_probs.exp() * log_probs).sum(-1)
            loss = -((reward - reward.mean()) * log_probs.gather(-1, action[:, None]).squeeze(-1)
                     + args.entropy_cost * entropy).mean()
        elif args.bandit_regression:  # the same feedback, learnt by regression: logit a predicts "a is right"
            chosen = out.logits[-1].gather(-1, action[:, None]).squeeze(-1)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(chosen, reward)
        else:
            loss = torch.nn.functional.cross_entropy(out.logits[-1], answer)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        seen += B
        accuracy = (out.logits[-1].argmax(-1) == answer).float().mean().item()
        if accuracy >= args.target:
            env.close()
            return seen, accuracy
    env.close()
    return None, accuracy


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay", type=int, default=15)
    parser.add_argument("--num-cues", type=int, default=4)
    parser.add_argument("--shuffled", action="store_true", help="the shuffled query (pick the slot)")
    parser.add_argument("--core", default="ur_lstm")
    parser.add_argument("--hidden-size", type=int, default=128)
    parser.add_argument("--observation-gate", type=lambda s: s.lower() in ("1", "true", "yes"),
                        default=False, help="true | false (default false, as every row measured)")
    parser.add_argument("--input-norm", type=lambda s: s.lower() in ("1", "true", "yes"),
                        default=False, help="true | false (default false, as every row measured)")
    parser.add_argument("--view-match", type=lambda s: s.lower() in ("1", "true", "yes"),
                        default=False, help="true | false: the heads read view-match scores (default false)")
    parser.add_argument("--core-option", action="append", default=[], metavar="KEY=VALUE",
                        help="a core option (e.g. refine_bias=zero), repeatable")
    parser.add_argument("--head-size", type=int, default=0, help="hidden layer of the heads (0: linear)")
    parser.add_argument("--random-actions", action="store_true",
                        help="feed uniform random previous actions, as a policy at chance would, not zeros")
    parser.add_argument("--bandit", action="store_true",
                        help="learn from one sampled answer and its 0/1 reward (REINFORCE), not the label")
    parser.add_argument("--bandit-regression", action="store_true",
                        help="the bandit's feedback learnt by regression: logit a predicts P(a is right)")
    parser.add_argument("--entropy-cost", type=float, default=0.01,
                        help="--bandit: weight of the entropy bonus (the agent's default)")
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--batch", type=int, default=64, help="episodes per step")
    parser.add_argument("--target", type=float, default=0.95, help="batch accuracy that counts as learned")
    parser.add_argument("--max-episodes", type=int, default=200_000)
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    if args.bandit and args.bandit_regression:
        parser.error("--bandit and --bandit-regression are two ways to learn the same feedback: pick one")
    try:  # a malformed pair, an unknown core or core option: one line, no traceback
        args.core_options = key_values(args.core_option, "--core-option")
        core_factory(args.core, args.hidden_size, args.core_options, refine_bias=CoreConfig.refine_bias)(8)
    except ValueError as error:  # ConfigError is one
        parser.error(str(error))
    torch.set_num_threads(args.threads)
    options = f" {args.core_options}" if args.core_options else ""
    task = f"{'ShuffledCueRecall' if args.shuffled else 'CueRecall'} delay {args.delay}, {args.num_cues} cues"
    print(f"{task}; {args.core} {args.hidden_size}{options}, observation_gate {args.observation_gate}, "
          f"input_norm {args.input_norm}, view_match {args.view_match}, head {args.head_size or 'linear'}, "
          f"{'random' if args.random_actions else 'zero'} previous actions, "
          f"lr {args.learning_rate}, {args.batch} episodes per step"
          + (f", bandit feedback (REINFORCE, entropy cost {args.entropy_cost})" if args.bandit else "")
          + (", bandit feedback learnt by regression" if args.bandit_regression else ""),
          flush=True)
    for seed in (int(s) for s in args.seeds.split(",")):
        seen, accuracy = episodes_to_learn(args, seed)
        verdict = (f"accuracy >= {args.target} after {seen:,} episodes" if seen is not None
                   else f"not within {args.max_episodes:,} episodes (last batch {accuracy:.2f})")
        print(f"seed {seed}: {verdict}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
