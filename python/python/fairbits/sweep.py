"""Sweeps from Python: every run of a grid as a task of its own, on Ray (a local Ray by default, or a
cluster by address) or in this process, written in the command line's sweep directory format so that
``fairbits report --from OUT`` reads it.

>>> from fairbits.sweep import sweep
>>> sweep("sweeps/adult", dataset="adult", methods=["sqnn", "mlp"], gammas=[0, 1], seeds=[0, 1],
...       epochs=10, backend="ray")  # doctest: +SKIP

Each run is shard ``k + 1`` of ``len(grid)`` of the sweep, so a task trains exactly that run; runs already
finished in ``out`` are kept (a sweep resumes), and tasks sharing the directory claim their runs as the
command line's processes do. On a multi-node Ray cluster ``out`` must be on a filesystem every node sees.
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Optional, Sequence

from . import _native, _schema

__all__ = ["sweep", "grid"]


def _settings(
    dataset: Optional[str],
    csv: Optional[str],
    target: Optional[str],
    sensitive: Optional[str],
    methods: Optional[Sequence[str]],
    penalties: Optional[Sequence[str]],
    rhos: Optional[Sequence[float]],
    gammas: Optional[Sequence[float]],
    seeds: Sequence[int],
    params: Dict[str, Any],
) -> str:
    if (dataset is None) == (csv is None):
        raise ValueError("give exactly one of dataset= (a shipped dataset) and csv= (a table file)")
    known = {d["python"] for d in _schema.CONSTRUCTOR}
    unknown = sorted(set(params) - known)
    if unknown:
        raise TypeError(f"sweep() got unexpected keyword argument(s) {unknown}; the estimator's parameters are {sorted(known)}")
    return json.dumps(
        {
            "dataset": dataset,
            "csv": os.fspath(csv) if csv is not None else None,
            "target": target,
            "sensitive": sensitive,
            "methods": list(methods) if methods is not None else ["sqnn", "sqnn-joint", "mlp", "adversarial"],
            "penalties": list(penalties) if penalties is not None else ["per-neuron@bank", "per-neuron:odds", "joint:odds"],
            "rhos": list(rhos or []),
            "gammas": None if gammas is None else [float(g) for g in gammas],
            "seeds": [int(s) for s in seeds],
            "params": _schema.model_texts(params),
        }
    )


def grid(**kwargs: Any) -> List[str]:
    """The run identifiers of the sweep :func:`sweep` would run (same arguments, without ``out``)."""
    for runner_only in ("backend", "address"):
        kwargs.pop(runner_only, None)
    return _native.sweep_grid(_build(**kwargs))


def _build(
    dataset: Optional[str] = None,
    csv: Optional[str] = None,
    target: Optional[str] = None,
    sensitive: Optional[str] = None,
    methods: Optional[Sequence[str]] = None,
    penalties: Optional[Sequence[str]] = None,
    rhos: Optional[Sequence[float]] = None,
    gammas: Optional[Sequence[float]] = None,
    seeds: Sequence[int] = (0, 1, 2),
    **params: Any,
) -> str:
    return _settings(dataset, csv, target, sensitive, methods, penalties, rhos, gammas, seeds, params)


def _run_one(settings: str, out: str, index: int, count: int) -> int:
    return _native.sweep_shard(settings, out, index, count)


def sweep(out: str, *, backend: str = "ray", address: Optional[str] = None, **kwargs: Any) -> str:
    """Runs a sweep into ``out``, one task per run, then writes ``results.csv``, ``summary.csv`` and the plots.

    Parameters
    ----------
    out : str
        The sweep directory (the command line's format; an existing sweep of the same settings resumes).
    backend : {"ray", "local"}
        ``"ray"``: each run a Ray task (``ray.init(address)``: a local Ray when ``address`` is None);
        ``"local"``: the runs one after another in this process.
    address : str, optional
        A Ray cluster's address.
    **kwargs
        ``dataset=`` or ``csv=`` (with ``target=``, ``sensitive=``), ``methods=``, ``penalties=``, ``rhos=``,
        ``gammas=``, ``seeds=``, and any parameter of :class:`fairbits.FairRepresentationClassifier`'s
        native core (``epochs``, ``hidden``, ``batch_size``, ``learning_rate``, ``draws``, ...), and the
        evaluation's ``forest_trees`` and ``mc_samples``.

    Returns
    -------
    str
        ``out``.
    """
    settings = _build(**kwargs)
    out = os.fspath(out)
    ids = _native.sweep_grid(settings)
    n = len(ids)
    if backend == "local":
        for k in range(n):
            _run_one(settings, out, k + 1, n)
    elif backend == "ray":
        import ray

        if not ray.is_initialized():
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        task = ray.remote(num_cpus=1)(_run_one)
        ray.get([task.options(name=f"fairbits:{ids[k]}").remote(settings, out, k + 1, n) for k in range(n)])
    else:
        raise ValueError(f"invalid backend = {backend!r}: must be 'ray' or 'local'")
    _native.sweep_finish(out)
    return out
