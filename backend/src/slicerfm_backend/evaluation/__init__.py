"""A simulated user, to measure interactive engines (``slicerfm-backend evaluate``).

- ``clicker.py``   where the next click goes (deepest point of the largest error region), Dice
- ``simulate.py``  the click loop over any ``interact`` function; clicks to a Dice threshold
- ``evaluate.py``  the command: a real server (started or given) driven through the client
- ``inprocess.py`` the same loop on an engine in this process (benchmarks, tests)
- ``cli.py``       the ``evaluate`` subcommand
"""
