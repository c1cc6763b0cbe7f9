"""Starts one command in N processes on this machine, joined into one JAX job.

    python -m keras_cmr.distribution.launch --num-processes 2 -- keras-cmr train --method met

Each process gets the variables that `initialize_processes` reads
(`KERAS_DISTRIBUTION_JOB_ADDRESSES`, `..._NUM_PROCESSES`, `..._PROCESS_ID`) and
`JAX_PLATFORMS`; the coordinator listens on a free port of localhost unless `--coordinator`
names one. When one process fails, or `--timeout` passes, all of them are killed: the others
would wait for it in a collective forever. On several machines, start one process per machine
yourself with those three variables set (docs/scaling.md).
"""

import argparse
import os
import socket
import subprocess
import sys
import time

from keras_cmr.distribution.processes import (COORDINATOR_ENV, NUM_PROCESSES_ENV,
                                              PROCESS_ID_ENV)


def free_port():
    """A localhost port that nobody listens on now (the OS picks it for a bind to port 0)."""
    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        return probe.getsockname()[1]


def start(command, num_processes, coordinator=None, outputs=None, platforms="cpu"):
    """Starts `command` (a list) in `num_processes` processes; returns the `Popen`s.

    Args:
        command: the program and its arguments, run by every process.
        num_processes: how many processes (>= 1).
        coordinator: "host:port" of process 0; default localhost at a free port.
        outputs: None (inherit stdout/stderr), or one path per process that receives its
            stdout and stderr.
        platforms: `JAX_PLATFORMS` of the processes (None: leave it as it is).
    """
    if num_processes < 1:
        raise ValueError(f"num_processes must be at least 1, got {num_processes}.")
    if outputs is not None and len(outputs) != num_processes:
        raise ValueError(f"{len(outputs)} output paths for {num_processes} processes.")
    env = dict(os.environ, **{COORDINATOR_ENV: coordinator or f"localhost:{free_port()}",
                              NUM_PROCESSES_ENV: str(num_processes)})
    if platforms is not None:
        env["JAX_PLATFORMS"] = platforms
    processes = []
    for index in range(num_processes):
        out = None if outputs is None else open(outputs[index], "w")
        try:
            processes.append(subprocess.Popen(
                command, stdout=out, stderr=None if out is None else subprocess.STDOUT,
                env=dict(env, **{PROCESS_ID_ENV: str(index)})))
        finally:
            if out is not None:
                out.close()
    return processes


def wait(processes, timeout=None):
    """Waits for all `processes`; kills every one still running at the first failure or when
    `timeout` seconds have passed. Returns their exit codes (-9: killed)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        while (any(process.poll() is None for process in processes)
               and not any(process.returncode for process in processes)
               and (deadline is None or time.monotonic() < deadline)):
            time.sleep(0.2)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
            process.wait()
    return [process.returncode for process in processes]


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m keras_cmr.distribution.launch",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--num-processes", "-n", type=int, required=True)
    parser.add_argument("--coordinator", help="host:port of process 0 (default: localhost, "
                                              "a free port)")
    parser.add_argument("--timeout", type=float, help="seconds before all are killed")
    parser.add_argument("command", nargs=argparse.REMAINDER,
                        help="the command every process runs, after --")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to run after --")
    codes = wait(start(command, args.num_processes, args.coordinator), args.timeout)
    return 0 if not any(codes) else 1


if __name__ == "__main__":
    sys.exit(main())
