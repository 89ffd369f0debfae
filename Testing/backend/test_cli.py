"""The command line is assembled from its subcommand modules, each with ``add_parsers``."""

import argparse

from slicerfm_backend import cli

COMMANDS = {
    "serve", "users", "engines", "evaluate", "weights", "segment", "register", "evaluate-registration", "benchmark",
}


def commands_of(module) -> set:
    parser = argparse.ArgumentParser()
    subparsers = parser.add_subparsers()
    module.add_parsers(subparsers)
    return set(subparsers.choices)


def test_every_subcommand_module_adds_its_commands_and_together_they_make_the_cli():
    added = [commands_of(module) for module in cli.SUBCOMMANDS]
    assert all(added), "a subcommand module added nothing"
    assert set().union(*added) == COMMANDS
    assert sum(len(names) for names in added) == len(COMMANDS)  # no command added twice


def test_every_command_knows_the_function_that_runs_it():
    parser = cli.build_parser()
    minimal = {"serve": [], "users": ["list"], "engines": [], "weights": ["list"],
               "evaluate": ["--image", "i", "--label", "l", "--label-id", "1"],
               "segment": ["--image", "i", "--everything", "--out", "o"],
               "register": ["--fixed", "f", "--moving", "m"],
               "evaluate-registration": ["--fixed", "f", "--moving", "m", "--fixed-labels", "a",
                                         "--moving-labels", "b"],
               "benchmark": ["--quick"]}
    for command, rest in minimal.items():
        assert callable(parser.parse_args([command, *rest]).func), command
