"""Generate ALFWorld games from what the alfworld wheel ships, in the release's folder layout.

For a fresh machine with no download: every game is a real ALFWorld PDDL problem for the wheel's domain
`alfred.pddl`, played by the same engine as the real games. Per game:

1. pick a task type (the six, in turn) and a room that ALFRED allows for it (`constants.GOALS_VALID`):
   kitchens 1-30, living rooms 201-230, bedrooms 301-330, bathrooms 401-430; `train` and `valid_seen`
   draw from ALFRED's training rooms, `valid_unseen` from its six held-out rooms of each kind;
2. furnish it from the room's layout files (`alfworld/gen/layouts/FloorPlan<n>-*.json|npy`): the
   receptacles with their ids and interaction poses, plus the receptacle types the room lists without a
   pose (stove burners, coffee machine, garbage can, ...) at a random reachable point;
3. put 1-3 instances of the room's portable object types into receptacles that may hold them
   (`constants.VAL_RECEPTACLE_OBJECTS`), with the properties of `constants.VAL_ACTION_OBJECTS`
   (cleanable, heatable, coolable, sliceable) and a desk lamp for the light tasks;
4. choose the target object and receptacle, write the goal from alfworld's goal library, and make sure
   the goal does not already hold;
5. keep the game only if fast-downward's planner (the one the environment uses) finds a plan of at most
   `MAX_PLAN` steps and playing that plan in the environment wins.

Written per game: `initial_state.pddl`, `traj_data.json` (task_type, pddl_params, scene; no human
annotations) and `game.tw-pddl` (domain, grammar with the task, problem, `solvable`, the planner's
`walkthrough`), under `json_2.1.1/<split>/<task>/<trial>/`.

How they differ from the real games (see docs/alfworld.md): the real problems were exported from the
AI2-THOR simulator after ALFRED's randomised object placement, so they hold every object of the scene
(also fixed ones such as windows and stove knobs), objects inside mugs or bowls, a few already-cool
objects, and receptacles that share an interaction point; generated rooms have fewer objects (capped),
one interaction point per receptacle, no nested objects, no floor lamps, and templated task sentences
only.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hgpo_cli.envs.alfworld.games import GAME_FILE, TASK_TYPE_LONG, TASK_TYPES, task_sentence, trial_seed, wheel_logic

SPLITS = ("train", "valid_seen", "valid_unseen")
GENERATOR_VERSION = 1  # bump when the generator changes: cached games of another version are rebuilt
ROOM_KINDS = {"Kitchen": "kitchen", "LivingRoom": "living room", "Bedroom": "bedroom", "Bathroom": "bathroom"}
MAX_PLAN = 30  # planner steps; well inside the 50-step episode
MAX_RECEPTACLES = 16
MAX_OBJECTS = 18
MAX_ATTEMPTS = 40
MULTI_INSTANCE = {"StoveBurner": (2, 4), "Cabinet": (1, 3), "Drawer": (1, 3), "Shelf": (1, 3)}
LAMP_HOLDERS = ("SideTable", "Desk", "Dresser", "Shelf", "CoffeeTable")
APPLIANCE = {
    "pick_clean_then_place": "SinkBasin",
    "pick_heat_then_place": "Microwave",
    "pick_cool_then_place": "Fridge",
}
PROPERTY = {
    "pick_clean_then_place": "Cleanable",
    "pick_heat_then_place": "Heatable",
    "pick_cool_then_place": "Coolable",
}


def _constants() -> Any:
    import alfworld.gen.constants as constants

    return constants


def _layouts_dir() -> Path:
    import alfworld.gen

    return Path(alfworld.gen.__file__).parent / "layouts"


def room_kind(scene: int) -> str:
    """kitchen, living room, bedroom or bathroom."""
    for kind, numbers in _constants().SCENE_TYPE.items():
        if scene in numbers:
            return ROOM_KINDS[kind]
    raise ValueError(f"no room kind for scene {scene}")


def _mangle(name: str) -> str:
    """ALFRED's PDDL spelling of ids (`PlannedGameState.fix_pddl_str_chars`, minus the '#' rule)."""
    out = []
    for ch in name:
        out.append({"-": "_minus_", "|": "_bar_", "+": "_plus_", ".": "_dot_", ",": "_comma_"}.get(ch, ch))
    return "".join(out)


def _recep_type(recep_id: str) -> str:
    parts = recep_id.split("|")
    return parts[-1] if parts[-1].endswith("Basin") else parts[0]


def _coord(rng: random.Random) -> str:
    return f"{rng.uniform(-3, 3):+06.2f}"


@dataclass
class Room:
    """A furnished room: receptacles with locations, objects in receptacles, the agent's start."""

    scene: int
    receptacles: dict[str, str] = field(default_factory=dict)  # receptacle id -> location id
    objects: dict[str, str] = field(default_factory=dict)  # object id -> receptacle id
    lamps: dict[str, str] = field(default_factory=dict)  # desk lamp id -> receptacle id
    agent_location: str = ""

    def rtypes(self) -> set[str]:
        return {_recep_type(r) for r in self.receptacles}

    def otypes(self) -> set[str]:
        return {o.split("|")[0] for o in self.objects}


def _location(rng: random.Random, x: float, z: float, rot: float, horizon: float) -> str:
    return f"loc|{round(x / 0.25)}|{round(z / 0.25)}|{round(rot / 90) % 4}|{round(horizon)}"


def furnish(
    scene: int,
    rng: random.Random,
    *,
    required: Sequence[str] = (),
    max_receptacles: int = MAX_RECEPTACLES,
    max_objects: int = MAX_OBJECTS,
) -> Room:
    """Receptacles and objects of one room from its layout files (step 2-3 of the module docstring), at
    most `max_receptacles` receptacles (the required types kept) and about `max_objects` objects."""
    import numpy as np

    c = _constants()
    layouts = _layouts_dir()
    listed = json.loads((layouts / f"FloorPlan{scene}-objects.json").read_text())
    poses = json.loads((layouts / f"FloorPlan{scene}-openable.json").read_text())
    points = np.load(layouts / f"FloorPlan{scene}-layout.npy")
    static = set(c.RECEPTACLES) - set(c.MOVABLE_RECEPTACLES)
    room = Room(scene=scene)
    used_locations: set[str] = set()

    def free_location() -> str:
        for _ in range(100):
            x, z = points[rng.randrange(len(points))]
            loc = _location(rng, float(x), float(z), rng.choice((0, 90, 180, 270)), rng.choice((0, 15, 30, 45, 60)))
            if loc not in used_locations:
                used_locations.add(loc)
                return loc
        raise RuntimeError(f"no free location in FloorPlan{scene}")

    for recep_id, (x, z, rot, horizon) in sorted(poses.items()):
        if _recep_type(recep_id) in static and _recep_type(recep_id) in c.VAL_RECEPTACLE_OBJECTS:
            loc = _location(rng, x, z, rot, horizon)
            if loc in used_locations:  # one interaction point per receptacle
                loc = free_location()
            used_locations.add(loc)
            room.receptacles[recep_id] = loc
    posed = room.rtypes()
    for rtype in sorted(set(listed) & static - posed):
        if rtype not in c.VAL_RECEPTACLE_OBJECTS:
            continue
        low, high = MULTI_INSTANCE.get(rtype, (1, 1))
        for _ in range(rng.randint(low, high)):
            xyz = f"{_coord(rng)}|{rng.uniform(0, 2):+06.2f}|{_coord(rng)}"
            if rtype == "SinkBasin":
                recep_id = f"Sink|{xyz}|SinkBasin"
            elif rtype == "BathtubBasin":
                recep_id = f"Bathtub|{xyz}|BathtubBasin"
            else:
                recep_id = f"{rtype}|{xyz}"
            room.receptacles[recep_id] = free_location()

    # Cap the number of receptacles (the planner's time grows with it); keep the required types.
    if len(room.receptacles) > max_receptacles:
        ids = sorted(room.receptacles)
        keep = {next(r for r in ids if _recep_type(r) == t) for t in required if any(_recep_type(r) == t for r in ids)}
        rest = [r for r in ids if r not in keep]
        rng.shuffle(rest)
        kept = keep | set(rest[: max(max_receptacles - len(keep), 0)])
        room.receptacles = {r: loc for r, loc in room.receptacles.items() if r in kept}

    holders: dict[str, list[str]] = {}
    for otype in sorted(set().union(*c.VAL_RECEPTACLE_OBJECTS.values())):
        if "Sliced" in otype:
            continue
        holders[otype] = sorted(
            r for r in room.receptacles if otype in c.VAL_RECEPTACLE_OBJECTS.get(_recep_type(r), ())
        )
    portable = [t for t in sorted(set(listed)) if holders.get(t)]
    rng.shuffle(portable)
    for otype in portable:
        for _ in range(rng.randint(1, c.MAX_NUM_OF_OBJ_INSTANCES)):
            if len(room.objects) >= max_objects and otype not in required:
                break
            obj_id = f"{otype}|{_coord(rng)}|{rng.uniform(0, 2):+06.2f}|{_coord(rng)}"
            room.objects[obj_id] = rng.choice(holders[otype])

    if "DeskLamp" in listed:
        lamp_holders = sorted(r for r in room.receptacles if _recep_type(r) in LAMP_HOLDERS)
        if lamp_holders:
            lamp_id = f"DeskLamp|{_coord(rng)}|{rng.uniform(0.5, 1.5):+06.2f}|{_coord(rng)}"
            room.lamps[lamp_id] = rng.choice(lamp_holders)

    room.agent_location = free_location()
    return room


@dataclass
class Goal:
    task_type: str  # short name
    obj: str
    recep: str = ""
    toggle: str = ""


def choose_goal(task_type: str, room: Room, rng: random.Random) -> Goal | None:
    """A target object and receptacle for the task type in this room, or None when the room has none."""
    c = _constants()
    rtypes, otypes = room.rtypes(), room.otypes()
    if task_type == "look_at_obj_in_light":
        if not room.lamps or not otypes:
            return None
        return Goal(task_type, obj=rng.choice(sorted(otypes)), toggle="DeskLamp")
    appliance = APPLIANCE.get(task_type)
    if appliance and appliance not in rtypes:
        return None
    candidates = []
    for otype in sorted(otypes):
        if task_type in PROPERTY and otype not in c.VAL_ACTION_OBJECTS[PROPERTY[task_type]]:
            continue
        for rtype in sorted(rtypes):
            if rtype == appliance or otype not in c.VAL_RECEPTACLE_OBJECTS.get(rtype, ()):
                continue
            if task_type == "pick_two_obj_and_place" and sum(o.split("|")[0] == otype for o in room.objects) < 2:
                continue
            candidates.append((otype, rtype))
    if not candidates:
        return None
    otype, rtype = rng.choice(candidates)
    return Goal(task_type, obj=otype, recep=rtype)


def settle_goal(goal: Goal, room: Room, rng: random.Random) -> bool:
    """Move target objects out of target-type receptacles so the goal does not hold at the start."""
    if not goal.recep:
        return True
    c = _constants()
    for obj_id, recep_id in list(room.objects.items()):
        if obj_id.split("|")[0] != goal.obj or _recep_type(recep_id) != goal.recep:
            continue
        others = sorted(
            r
            for r in room.receptacles
            if _recep_type(r) != goal.recep and goal.obj in c.VAL_RECEPTACLE_OBJECTS.get(_recep_type(r), ())
        )
        if not others:
            return False
        room.objects[obj_id] = rng.choice(others)
    return True


def goal_pddl(goal: Goal) -> str:
    import alfworld.gen.goal_library as goal_library

    template = goal_library.gdict[TASK_TYPE_LONG[goal.task_type]]["pddl"]
    return template.format(obj=goal.obj, recep=goal.recep, toggle=goal.toggle, mrecep="").replace("#", "-")


def problem_pddl(name: str, room: Room, goal: Goal) -> str:
    """The PDDL problem text, in the layout of ALFWorld's `initial_state.pddl`."""
    c = _constants()
    m = _mangle
    rtypes = sorted(room.rtypes())
    objects = sorted(room.objects) + sorted(room.lamps)
    otypes = sorted({o.split("|")[0] for o in objects} | {goal.obj} | ({goal.toggle} if goal.toggle else set()))
    all_rtypes = sorted(set(rtypes) | ({goal.recep} if goal.recep else set()))
    locations = sorted(set(room.receptacles.values()) | {room.agent_location})
    decl = ["agent1 - agent"]
    decl += [f"{t}Type - otype" for t in otypes]
    decl += [f"{t}Type - rtype" for t in all_rtypes]
    decl += [f"{m(o)} - object" for o in objects]
    decl += [f"{m(r)} - receptacle" for r in sorted(room.receptacles)]
    decl += [f"{m(loc)} - location" for loc in locations]
    init = [f"(receptacleType {m(r)} {_recep_type(r)}Type)" for r in sorted(room.receptacles)]
    init += [f"(objectType {m(o)} {o.split('|')[0]}Type)" for o in objects]
    init += [
        f"(canContain {rt}Type {ot}Type)"
        for rt in rtypes
        for ot in otypes
        if ot in c.VAL_RECEPTACLE_OBJECTS.get(rt, ())
    ]
    init += [f"(pickupable {m(o)})" for o in sorted(room.objects)]
    init += [f"(isReceptacleObject {m(o)})" for o in sorted(room.objects) if o.split("|")[0] in c.MOVABLE_RECEPTACLES]
    init += [f"(openable {m(r)})" for r in sorted(room.receptacles) if _recep_type(r) in c.OPENABLE_CLASS_SET]
    init.append(f"(atLocation agent1 {m(room.agent_location)})")
    for prop, predicate in (
        ("Cleanable", "cleanable"),
        ("Heatable", "heatable"),
        ("Coolable", "coolable"),
        ("Sliceable", "sliceable"),
    ):
        init += [f"({predicate} {m(o)})" for o in sorted(room.objects) if o.split("|")[0] in c.VAL_ACTION_OBJECTS[prop]]
    init += [f"(toggleable {m(lamp)})" for lamp in sorted(room.lamps)]
    placed = {**room.objects, **room.lamps}
    init += [f"(inReceptacle {m(o)} {m(r)})" for o, r in sorted(placed.items())]
    init += [f"(receptacleAtLocation {m(r)} {m(loc)})" for r, loc in sorted(room.receptacles.items())]
    init += [f"(objectAtLocation {m(o)} {m(room.receptacles[r])})" for o, r in sorted(placed.items())]
    pad = "\n        "
    return (
        f"\n(define (problem plan_{name})\n(:domain alfred)\n(:objects\n{pad.join(decl)}\n        )\n"
        f"(:init\n{pad.join(init)}\n        )\n{goal_pddl(goal)}"
    )


def traj_data(trial: str, goal: Goal, scene: int, info: dict[str, Any]) -> dict[str, Any]:
    return {
        "task_id": trial,
        "task_type": TASK_TYPE_LONG[goal.task_type],
        "pddl_params": {
            "object_target": goal.obj,
            "parent_target": goal.recep,
            "toggle_target": goal.toggle,
            "mrecep_target": "",
            "object_sliced": False,
        },
        "scene": {"scene_num": scene},
        "turk_annotations": {"anns": []},
        "hgpo_generated": info,
    }


def verify(game: dict[str, Any]) -> list[str] | None:
    """The planner's plan if the game starts unsolved, has a plan of at most MAX_PLAN steps, and playing
    it in the engine wins; else None."""
    from hgpo_cli.envs.alfworld import engine_cache
    from hgpo_cli.envs.alfworld.env import _acquire_engine, _release_engine

    engine_cache.install()
    engine = _acquire_engine()
    try:
        engine.load(game)
        state = engine.reset()
        if state["won"]:
            return None
        inner = engine.unwrapped
        plan = list(inner._pddl_state.replan(inner._entity_infos))
        if not plan or len(plan) > MAX_PLAN:
            return None
        for command in plan:
            if command not in state["admissible_commands"]:
                return None
            state, _, _ = engine.step(command)
        return plan if state["won"] else None
    except Exception:
        return None
    finally:
        _release_engine(engine)


def _scenes(split: str, task_type: str) -> list[int]:
    c = _constants()
    pool = c.TEST_SCENE_NUMBERS if split == "valid_unseen" else c.TRAIN_SCENE_NUMBERS
    kinds = c.GOALS_VALID[TASK_TYPE_LONG[task_type]]
    return sorted(n for n in pool if any(n in c.SCENE_TYPE[k] for k in kinds))


def generate_one(
    split: str, index: int, seed: int, task_type: str, limits: tuple[int, int] = (MAX_RECEPTACLES, MAX_OBJECTS)
) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """(relative trial folder, traj_data, game data) of game `index` of a split; deterministic.

    limits: (at most this many receptacles, about this many objects) per room."""
    domain, grammar = wheel_logic()
    for attempt in range(MAX_ATTEMPTS):
        rng = random.Random(f"hgpo-alfworld:{seed}:{split}:{index}:{attempt}")
        scene = rng.choice(_scenes(split, task_type))
        required = [APPLIANCE[task_type]] if task_type in APPLIANCE else []
        room = furnish(scene, rng, required=required, max_receptacles=limits[0], max_objects=limits[1])
        goal = choose_goal(task_type, room, rng)
        if goal is None or not settle_goal(goal, room, rng):
            continue
        trial = f"trial_G{seed}_{split}_{index:05d}"
        task_dir = f"{TASK_TYPE_LONG[task_type]}-{goal.obj}-None-{goal.recep or goal.toggle}-{scene}"
        info = {
            "generator": "hgpo",
            "version": GENERATOR_VERSION,
            "seed": seed,
            "split": split,
            "index": index,
            "attempt": attempt,
            "room": room_kind(scene),
        }
        traj = traj_data(trial, goal, scene, info)
        problem = problem_pddl(trial, room, goal)
        sentence = task_sentence(traj, random.Random(trial_seed(Path(task_dir) / trial)))
        game = {
            "pddl_domain": domain,
            "grammar": grammar.replace("UNKNOWN GOAL", sentence),
            "pddl_problem": problem,
            "solvable": None,
            "walkthrough": None,
        }
        plan = verify(game)
        if plan is None:
            continue
        game["solvable"], game["walkthrough"] = True, plan
        return f"{task_dir}/{trial}", traj, game
    raise RuntimeError(f"could not generate a solvable {task_type} game (split {split}, index {index})")


def write_game(split_folder: Path, rel: str, traj: dict[str, Any], game: dict[str, Any]) -> Path:
    trial = split_folder / rel
    trial.mkdir(parents=True, exist_ok=True)
    (trial / "initial_state.pddl").write_text(game["pddl_problem"])
    (trial / "traj_data.json").write_text(json.dumps(traj, indent=1))
    (trial / GAME_FILE).write_text(json.dumps(game))
    return trial


COMPLETE = ".complete"


DEFAULT_LIMITS = (MAX_RECEPTACLES, MAX_OBJECTS)


def _marker(n: int, seed: int, types: list[str], limits: tuple[int, int] = DEFAULT_LIMITS) -> dict[str, Any]:
    marker: dict[str, Any] = {"generator_version": GENERATOR_VERSION, "n": n, "seed": seed, "task_types": types}
    if tuple(limits) != DEFAULT_LIMITS:
        marker["room_limits"] = list(limits)
    return marker


def _current(trial: Path) -> bool:
    """Whether a trial folder was written completely by this generator version."""
    try:
        info = json.loads((trial / "traj_data.json").read_text()).get("hgpo_generated", {})
        game = json.loads((trial / GAME_FILE).read_text())
    except (OSError, ValueError):
        return False
    return info.get("version") == GENERATOR_VERSION and bool(game.get("walkthrough"))


def _generate_index(
    args: tuple[str, int, int, str, tuple[int, int]],
) -> tuple[int, str, dict[str, Any], dict[str, Any]]:
    split, index, seed, task_type, limits = args
    rel, traj, game = generate_one(split, index, seed, task_type, limits)
    return index, rel, traj, game


def generate_split(
    out: str | Path,
    split: str,
    n: int,
    seed: int,
    task_types: Sequence[str] | None = None,
    progress: Callable[[int, int, str], None] | None = None,
    workers: int = 1,
    limits: tuple[int, int] = DEFAULT_LIMITS,
) -> list[Path]:
    """Write `n` verified games of one split under `<out>/json_2.1.1/<split>/`; the task types take turns.

    Deterministic in (split, n, seed, task_types), whatever `workers` is. Games already written by an
    earlier, interrupted call are kept, and a `.complete` marker is written at the end.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split '{split}' (one of {', '.join(SPLITS)})")
    types = list(task_types or TASK_TYPES)
    unknown = [t for t in types if t not in TASK_TYPES]
    if unknown:
        raise ValueError(f"unknown task type(s) {', '.join(unknown)} (one of {', '.join(TASK_TYPES)})")
    folder = Path(out) / "json_2.1.1" / split
    folder.mkdir(parents=True, exist_ok=True)
    (folder / COMPLETE).unlink(missing_ok=True)
    written: dict[int, Path] = {}
    todo: list[tuple[str, int, int, str, tuple[int, int]]] = []
    for index in range(n):
        task_type = types[index % len(types)]
        existing = [
            p.parent
            for p in sorted(folder.glob(f"{TASK_TYPE_LONG[task_type]}-*/trial_G{seed}_{split}_{index:05d}/{GAME_FILE}"))
            if _current(p.parent)
        ]
        if existing:
            written[index] = existing[0]
        else:
            todo.append((split, index, seed, task_type, tuple(limits)))
    done = len(written)
    if progress is not None and done:
        progress(done, n, "cached")
    if workers <= 1 or len(todo) < 4 * workers:  # starting processes costs more than a few games
        results = map(_generate_index, todo)
        for index, rel, traj, game in results:
            written[index] = write_game(folder, rel, traj, game)
            done += 1
            if progress is not None:
                progress(done, n, traj["task_type"])
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = [pool.submit(_generate_index, args) for args in todo]
            for future in as_completed(futures):
                index, rel, traj, game = future.result()
                written[index] = write_game(folder, rel, traj, game)
                done += 1
                if progress is not None:
                    progress(done, n, traj["task_type"])
    (folder / COMPLETE).write_text(json.dumps(_marker(n, seed, types, limits)))
    return [written[i] for i in range(n)]


def split_complete(
    out: str | Path,
    split: str,
    n: int,
    seed: int,
    task_types: Sequence[str] | None = None,
    limits: tuple[int, int] = DEFAULT_LIMITS,
) -> bool:
    """Whether `generate_split` finished with these arguments (and this generator version)."""
    marker = Path(out) / "json_2.1.1" / split / COMPLETE
    if not marker.is_file():
        return False
    try:
        data = json.loads(marker.read_text())
    except ValueError:
        return False
    return data == _marker(n, seed, list(task_types or TASK_TYPES), limits)
