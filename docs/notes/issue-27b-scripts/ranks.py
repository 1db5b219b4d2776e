"""What the failure hunt sees on the demo (stage 2) under each Repeats choice."""
import numpy as np
from scipy.stats import spearmanr

from brainview.decoding.progress import finish
from brainview.state.headless import headless_session
from brainview.state.repeat_choice import iter_repeat_predictions

s = headless_session("resources/demo", captions=False)
s.predict_all()
mean = s.score_values("image_rank")
print(f"counts: {np.bincount(np.asarray(s.bundle.repeat_counts))}, chance top-1 {1 / s.n_trials:.4f}, median chance rank {(s.n_trials + 1) / 2}")
print(f"mean of all: top-1 {np.mean(mean == 1):.3f}, median rank {np.median(mean):.0f}, worst {mean.max():.0f}")
worst_mean = set(np.argsort(-mean, kind="stable")[:20])
for k in range(1, s.bundle.max_repeats + 1):
    s.repeats.keep(finish(iter_repeat_predictions(s.bundle, s.decoder, k)))
    r = s.score_values("image_rank")
    worst = set(np.argsort(-r, kind="stable")[:20])
    print(f"repeat {k}: top-1 {np.mean(r == 1):.3f}, median rank {np.median(r):.0f}, worst {r.max():.0f}, "
          f"trials whose rank changes {np.mean(r != mean):.3f}, worst-20 shared with the mean's {len(worst & worst_mean)}/20, "
          f"Spearman vs mean {spearmanr(r, mean).statistic:.2f}, fallbacks {s.repeats.fallbacks()}")
