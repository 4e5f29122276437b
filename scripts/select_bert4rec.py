"""Choose BERT4Rec's preset on MovieLens-100K validation data: train each candidate (seed 0, `loo-full`,
early stopping on validation NDCG@10) and keep the best validation NDCG@10; test numbers play no part.

    python scripts/select_bert4rec.py [--data-dir PATH] [--out runs/select-bert4rec]

Prints the candidates' validation metrics and replaces the README section `bert4rec-selection`.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from readme_section import replace_section

from seqrec import api

BASE = {"model_params.L": 50, "model_params.embedding_dim": 64, "model_params.num_blocks": 2,
        "model_params.num_heads": 2, "train.loss": "softmax", "train.epochs": 200,
        "train.early_stopping_metric": "ndcg@10", "train.patience": 10}
CANDIDATES = {
    "lr 1e-3, mask 0.2, dropout 0.2, batch 64": {"train.lr": 1e-3, "train.mask_prob": 0.2,
                                                 "model_params.dropout": 0.2, "train.batch_size": 64},
    "lr 3e-3, mask 0.2, dropout 0.2, batch 64": {"train.lr": 3e-3, "train.mask_prob": 0.2,
                                                 "model_params.dropout": 0.2, "train.batch_size": 64},
    "lr 3e-3, mask 0.4, dropout 0.2, batch 64": {"train.lr": 3e-3, "train.mask_prob": 0.4,
                                                 "model_params.dropout": 0.2, "train.batch_size": 64},
    "lr 3e-3, mask 0.2, dropout 0.4, batch 64": {"train.lr": 3e-3, "train.mask_prob": 0.2,
                                                 "model_params.dropout": 0.4, "train.batch_size": 64},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", type=Path, default=Path("runs/select-bert4rec"))
    args = parser.parse_args()
    common = BASE | {"model": "bert4rec", "seed": 0, "eval.protocols": ["loo-full"], "data.data_dir": args.data_dir}
    log = api.load_dataset(api.resolve_run_config(None, None, common).data)
    rows = []
    for i, (label, change) in enumerate(CANDIDATES.items()):
        started = time.perf_counter()
        result = api.run(log, api.resolve_run_config(None, None, common | change), args.out / f"candidate-{i}", False)
        valid = result.validation["loo-full"]
        rows.append((label, valid["ndcg@10"], valid["hr@10"], result.best_epoch, time.perf_counter() - started))
        print(f"{label}: valid ndcg@10 {valid['ndcg@10']:.4f}, hr@10 {valid['hr@10']:.4f}, best epoch "
              f"{result.best_epoch}, {rows[-1][-1]:.0f} s", flush=True)
    best = max(rows, key=lambda row: row[1])
    lines = ["| candidate (L 50, d 64, 2 blocks, 2 heads, full softmax) | valid ndcg@10 | valid hr@10 | best epoch |",
             "|---|---|---|---|"]
    lines += [f"| {'**' + r[0] + '**' if r is best else r[0]} | {r[1]:.4f} | {r[2]:.4f} | {r[3]} |" for r in rows]
    replace_section("bert4rec-selection", "\n".join(lines) + f"\n\nChosen: {best[0]} (seed 0, `loo-full` validation).")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
