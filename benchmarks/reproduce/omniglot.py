"""The Omniglot-minimal table: 5-way 1-shot, 5-way 5-shot and 20-way 1-shot
test accuracy over 600 tasks (mean ± 95% CI) of every algorithm, each with
the iteration budget of `runs.OMNIGLOT_BUDGETS`; MAML 5-way 1-shot with
seeds 0, 1 and 2.

    python -m benchmarks.reproduce.omniglot                    # every run not done yet
    python -m benchmarks.reproduce.omniglot --only=maml,protonet
    python -m benchmarks.reproduce.omniglot --only=maml_5w1s_seed1 --force
    python -m benchmarks.reproduce.omniglot --smoke --only=protonet
    python -m benchmarks.reproduce.tables                      # then the README's tables
"""

from benchmarks.reproduce import runner, runs


def main(argv=None):
    args = runner.argument_parser(__doc__.split("\n\n")[0]).parse_args(argv)
    runner.main(runs.omniglot_runs(), args)


if __name__ == "__main__":
    main()
