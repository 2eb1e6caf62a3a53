"""The study as pictures: the objective of every trial (pruned ones at their last reported value) with the
best so far, and how much each hyperparameter mattered. Matplotlib's object API on an Agg canvas (no pyplot
global state), like ``fakenews_ml.metrics.save_plots``."""

from __future__ import annotations

from pathlib import Path

from fakenews_ml.manifests import TrialRecord

OBJECTIVE_PLOT, IMPORTANCE_PLOT = "objective_per_trial.png", "parameter_importance.png"


def _figure(width: float = 6.4, height: float = 4.0):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)
    return figure


def plot_objective(trials: list[TrialRecord], objective: str, path: Path) -> Path:
    figure = _figure()
    axes = figure.add_subplot()
    complete = [t for t in trials if t.state == "COMPLETE" and t.value is not None]
    pruned = [t for t in trials if t.state == "PRUNED" and t.last_reported is not None]
    axes.scatter(
        [t.number for t in complete], [t.value for t in complete], color="tab:blue", label="complete", zorder=3
    )
    if pruned:
        axes.scatter(
            [t.number for t in pruned],
            [t.last_reported for t in pruned],
            marker="x",
            color="tab:gray",
            label="pruned (last reported)",
            zorder=3,
        )
    best, steps = None, []
    for trial in sorted(complete, key=lambda t: t.number):
        best = trial.value if best is None else max(best, trial.value)
        steps.append((trial.number, best))
    if steps:
        axes.step([n for n, _ in steps], [b for _, b in steps], where="post", color="tab:orange", label="best so far")
    axes.set_xlabel("trial")
    axes.set_ylabel(objective)
    axes.set_title("Objective per trial")
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path)
    return path


def plot_importance(importance: dict[str, float], path: Path) -> Path:
    figure = _figure(height=max(2.5, 0.5 * len(importance) + 1.2))
    axes = figure.add_subplot()
    ordered = sorted(importance.items(), key=lambda item: item[1])
    axes.barh([name for name, _ in ordered], [value for _, value in ordered], color="tab:green")
    axes.set_xlabel("importance (share of the objective's variance, fANOVA)")
    axes.set_title("Hyperparameter importance")
    axes.grid(axis="x", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path)
    return path


def save_search_plots(
    trials: list[TrialRecord], importance: dict[str, float], objective: str, out_dir: Path
) -> dict[str, Path]:
    """The plots there is something to draw for (importance needs at least two finished trials)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    plots = {"objective_per_trial": plot_objective(trials, objective, out_dir / OBJECTIVE_PLOT)}
    if importance:
        plots["parameter_importance"] = plot_importance(importance, out_dir / IMPORTANCE_PLOT)
    return plots
