"""Figure for chapter 7: the learning-rate schedules of minitorch_nndl.optim.lr_scheduler.

    python docs/figures/make_lr_schedules.py        # writes docs/figures/lr_schedules.png

Every curve is computed by our schedulers (optim.lr_scheduler.lr_sequence), over
30 "epochs" stepped once per epoch (OneCycleLR: 30 epochs x 20 steps, stepped per batch).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from minitorch_nndl.optim.lr_scheduler import (  # noqa: E402
    CosineAnnealingLR,
    LinearLR,
    MultiStepLR,
    OneCycleLR,
    SequentialLR,
    StepLR,
    lr_sequence,
)

HERE = Path(__file__).resolve().parent
EPOCHS = 30


def warmup_cosine(opt):  # the recipe of chapter 9: 3 epochs of linear warm-up, then a cosine to 0
    warmup = LinearLR(opt, start_factor=0.1, total_iters=3)
    cosine = CosineAnnealingLR(opt, T_max=EPOCHS - 3)
    return SequentialLR(opt, [warmup, cosine], milestones=[3])


SCHEDULES = {
    "StepLR(step_size=10, gamma=0.1)": (lambda opt: StepLR(opt, step_size=10, gamma=0.1), EPOCHS, 1),
    "MultiStepLR(milestones=[15, 25])": (lambda opt: MultiStepLR(opt, milestones=[15, 25], gamma=0.1), EPOCHS, 1),
    f"CosineAnnealingLR(T_max={EPOCHS})": (lambda opt: CosineAnnealingLR(opt, T_max=EPOCHS), EPOCHS, 1),
    "LinearLR warm-up (3) + cosine": (warmup_cosine, EPOCHS, 1),
    "OneCycleLR(max_lr=0.1), per batch": (
        lambda opt: OneCycleLR(opt, max_lr=0.1, epochs=EPOCHS, steps_per_epoch=20),
        EPOCHS * 20,
        20,
    ),
}


def main() -> None:
    fig, axes = plt.subplots(2, 3, figsize=(10.5, 5.5), sharey=True)
    for ax, (title, (make, steps, per_epoch)) in zip(axes.flat, SCHEDULES.items()):
        rows = lr_sequence(make, steps=steps, lr=0.1)
        style = "steps-post" if per_epoch == 1 else "default"  # per-epoch rates are constant within an epoch
        ax.plot([i / per_epoch for i in range(steps)], [r[0] for r in rows], color="#1f77b4", drawstyle=style)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
        ax.grid(alpha=0.3)
    last = axes.flat[-1]
    last.plot(range(EPOCHS), [0.001] * EPOCHS, color="#d62728")
    last.set_title("constant lr=0.001 (the course's setup)", fontsize=9)
    last.set_xlabel("epoch", fontsize=8)
    last.grid(alpha=0.3)
    for ax in axes[:, 0]:
        ax.set_ylabel("learning rate", fontsize=8)
    fig.suptitle("Learning-rate schedules, base lr 0.1 (minitorch_nndl.optim.lr_scheduler)", fontsize=10)
    fig.tight_layout()
    out = HERE / "lr_schedules.png"
    fig.savefig(out, dpi=72)
    plt.close(fig)
    print(out, out.stat().st_size, "bytes")


if __name__ == "__main__":
    main()
