# %% [markdown]
# # Fine-tune the intent classifier on your own taxonomy
#
# tokenflow ships a taxonomy for e-commerce APIs (payment, refund, shipping ...), but the intents that
# matter are yours. This notebook goes through the whole workflow for a **hotel front desk**:
#
# 1. define the intents in YAML, with English and Chinese keywords (that alone gives a working rule classifier);
# 2. train the LoRA classifier on a small hand-labelled set (210 examples, some with two intents);
# 3. compare rules, neural and hybrid on a separate hand-written test set: a metrics table and a
#    gold-vs-predicted heat map;
# 4. save the model, reload it, and check that it predicts exactly the same.
#
# Everything runs offline on a CPU in about a minute and a half. The backbone is the packaged
# all-MiniLM-L6-v2; tokenflow adds the ~3,300 common Chinese characters it does not know and trains them
# together with the LoRA adapters. Training is kept short (at most 10 epochs over 210 labelled examples,
# stopping early when dev F1 stalls): this shows the workflow, it is not a benchmark. The same workflow from
# a shell, with the CLI's defaults, is
# `tokenflow train data/hotel_intents_train.jsonl --taxonomy data/hotel_taxonomy.yaml --out models/hotel`
# (add `--epochs 10 --batch-size 16 --lr 4e-3` for this notebook's settings; its `max_length=32` has no flag).

# %%
import tempfile
import warnings
from collections import Counter
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from tokenflow_rag.classifiers import RuleClassifier, load_classifier
from tokenflow_rag.classifiers.neural import NeuralConfig
from tokenflow_rag.classifiers.trainer import IntentTrainer, TrainingArguments
from tokenflow_rag.classifiers.training_data import load_training_data
from tokenflow_rag.evaluation.metrics import multilabel_report
from tokenflow_rag.taxonomy import load_taxonomy

# A 6-layer model on small batches gains nothing from a second thread, and on a busy 2-core machine
# two threads fight each other (10x slower here). Raise it on a dedicated machine.
torch.set_num_threads(1)
warnings.filterwarnings("ignore", message=".*save_embedding_layers.*")
warnings.filterwarnings("ignore", message=".*requires_grad=True to a scalar.*")
DATA = Path("data")

# %% [markdown]
# ## 1. The taxonomy
# [`data/hotel_taxonomy.yaml`](data/hotel_taxonomy.yaml) defines eight intents. Each has a description,
# keywords per language (English ones match whole words with inflections, Chinese ones as substrings),
# the number of chunks `k` a query of that intent needs, and optionally a `parent`: `deposit` refines
# `billing`, so a retrieval restricted to `billing` also searches the deposit documents.
# The keyword lists are short on purpose, like a first draft: the model should catch what they miss.

# %%
taxonomy = load_taxonomy(DATA / "hotel_taxonomy.yaml")
pd.DataFrame(
    [
        {
            "intent": i.name,
            "parent": i.parent or "",
            "k": i.k,
            "en keywords": ", ".join(i.keywords.get("en", ())),
            "zh keywords": ", ".join(i.keywords.get("zh", ())),
        }
        for i in taxonomy
    ]
).set_index("intent")

# %% [markdown]
# ## 2. The labelled data
# One JSON object per line, `{"text": ..., "intents": [...]}`, `[]` for a query with no hotel intent.
# `load_training_data` is strict: an intent the taxonomy lacks, an empty text or a duplicate row is an
# error naming the file and line. The test file was written separately and shares no text with the
# training file.

# %%
train = load_training_data(DATA / "hotel_intents_train.jsonl", taxonomy)
test = load_training_data(DATA / "hotel_intents_test.jsonl", taxonomy)
assert not {ex.text.lower() for ex in train} & {ex.text.lower() for ex in test}, "train and test overlap"


def describe(examples):
    counts = Counter(name for ex in examples for name in ex.intents)
    row = {name: counts[name] for name in taxonomy.names}
    zh = sum(any("\u4e00" <= ch <= "\u9fff" for ch in ex.text) for ex in examples)
    return {
        **row,
        "none": sum(not ex.intents for ex in examples),
        "multi-intent": sum(len(ex.intents) > 1 for ex in examples),
        "Chinese": zh,
        "English": len(examples) - zh,
        "rows": len(examples),
    }


pd.DataFrame({"train": describe(train), "test": describe(test)}).T

# %% [markdown]
# ## 3. Train
# `IntentTrainer` holds out 15% of the training rows as a dev split (stratified by intent) for early
# stopping and for calibration. Beside the network it fits a character n-gram model on the same rows (seconds);
# the hybrid's fused score is 0.3 x rules + 0.7 x the mean of the two. The neural scores alone and the fused
# score each get Platt scaling and an F1-best threshold per intent. It returns a ready `HybridClassifier`.
# Same data and seed give the same model.

# %%
trainer = IntentTrainer(
    taxonomy,
    config=NeuralConfig(max_length=32),  # queries are short; shorter sequences train faster
    args=TrainingArguments(epochs=10, batch_size=16, learning_rate=4e-3, patience=3, seed=13, progress=False),
)
hybrid = trainer.train(train)
info = hybrid.neural.metadata
print(
    f"trained on {info['train_examples']} examples (dev {info['dev_examples']}), {info['epochs_run']} epochs, "
    f"best epoch {info['best_epoch']}, in {info['train_seconds']} s"
)
pd.DataFrame(trainer.history).set_index("epoch").round(3).T

# %% [markdown]
# ## 4. Rules vs neural vs hybrid on the test set
# Micro-F1 counts every (query, intent) decision; exact match needs the whole intent set right; "none
# recall" is how often a query without a hotel intent is left unlabelled (so retrieval falls back to a
# plain search instead of filtering on a wrong intent).

# %%
rules = RuleClassifier(taxonomy)
classifiers = {"rules": rules, "neural": hybrid.neural, "hybrid": hybrid}
texts = [ex.text for ex in test]
gold = [ex.intents for ex in test]
predictions = {name: [p.intents for p in clf.predict(texts)] for name, clf in classifiers.items()}
reports = {name: multilabel_report(gold, pred, labels=taxonomy.names) for name, pred in predictions.items()}
pd.DataFrame(
    {
        name: {
            "micro-F1": r["micro_f1"],
            "macro-F1": r["macro_f1"],
            "exact match": r["exact_match"],
            "micro precision": r["micro_precision"],
            "micro recall": r["micro_recall"],
            "none recall": r["none_recall"],
        }
        for name, r in reports.items()
    }
).T.round(3)

# %% [markdown]
# Per intent (F1; `support` = test queries carrying the intent):

# %%
per_intent = pd.DataFrame({name: {i: r["per_intent"][i]["f1"] for i in taxonomy.names} for name, r in reports.items()})
per_intent["support"] = [reports["rules"]["per_intent"][i]["support"] for i in taxonomy.names]
per_intent.round(2)

# %% [markdown]
# ## 5. Where the predictions go: gold vs predicted heat maps
# A multi-label confusion matrix: row = a gold intent, column = a predicted intent, cell = the share of
# the test queries carrying the row's intent whose prediction contains the column's intent (`none` = an
# empty set). A perfect classifier is a clean diagonal; off-diagonal cells are confusions and extra
# intents, and the `none` column is what a classifier missed entirely. A two-intent query counts in both
# of its gold rows with everything predicted for it, so a correct two-intent prediction also lights the
# cell of its partner intent (the small `.11` to `.14` cells that all three maps share).

# %%
labels = [*taxonomy.names, "none"]


def cooccurrence(gold_sets, pred_sets):
    matrix = np.zeros((len(labels), len(labels)))
    for g, p in zip(gold_sets, pred_sets):
        for gi in g or ("none",):
            for pi in p or ("none",):
                matrix[labels.index(gi), labels.index(pi)] += 1
    support = np.array([sum(name in (g or ("none",)) for g in gold_sets) for name in labels])
    return matrix / np.maximum(support, 1)[:, None]


fig, axes = plt.subplots(1, 3, figsize=(16, 5.4), sharey=True)
for ax, (name, pred) in zip(axes, predictions.items()):
    matrix = cooccurrence(gold, pred)
    image = ax.imshow(matrix, cmap="Blues", vmin=0, vmax=1)
    for (row, col), value in np.ndenumerate(matrix):
        if value > 0:
            ax.text(
                col,
                row,
                f"{value:.2f}".lstrip("0"),
                ha="center",
                va="center",
                fontsize=7,
                color="white" if value > 0.6 else "black",
            )
    ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_title(f"{name}: micro-F1 {reports[name]['micro_f1']:.2f}, exact {reports[name]['exact_match']:.2f}")
    ax.set_xlabel("predicted")
axes[0].set_ylabel("gold")
fig.colorbar(image, ax=axes, shrink=0.8, label="share of the gold row")
plt.show()

# %% [markdown]
# The test queries where the rules and the hybrid disagree, with the keywords that fired:

# %%
rule_predictions = rules.predict(texts)
disagree = [
    {
        "query": t,
        "gold": ", ".join(g) or "none",
        "rules": ", ".join(r) or "none",
        "hybrid": ", ".join(h) or "none",
        "keywords": "; ".join(f"{k}: {'/'.join(v)}" for k, v in rp.evidence.items()),
    }
    for t, g, r, h, rp in zip(texts, gold, predictions["rules"], predictions["hybrid"], rule_predictions)
    if set(r) != set(h)
]
pd.set_option("display.max_colwidth", 60)
pd.DataFrame(disagree)

# %% [markdown]
# ## 6. Save and reload
# `save_pretrained` writes only what training changed (LoRA matrices, the head, the pooler, the added
# character rows; safetensors + JSON, a few MB); the backbone stays in its package. `load_classifier`
# reads it back offline, and the reloaded hybrid predicts exactly what the trained one did.

# %%
model_dir = Path(tempfile.mkdtemp()) / "hotel_model"
hybrid.save_pretrained(model_dir)
for path in sorted(model_dir.iterdir()):
    print(f"{path.name:<28}{path.stat().st_size / 1e6:>6.2f} MB")

reloaded = load_classifier(model_dir)
before, after = hybrid.predict(texts), reloaded.predict(texts)
same_intents = all(a.intents == b.intents for a, b in zip(before, after))
max_diff = max(abs(a.scores[i] - b.scores[i]) for a, b in zip(before, after) for i in taxonomy.names)
print(f"reloaded: {type(reloaded).__name__}, degraded to rules: {reloaded.is_degraded}")
print(f"same intents on all {len(texts)} test queries: {same_intents}; largest score difference: {max_diff:.1e}")
assert same_intents and max_diff < 1e-5

# %% [markdown]
# One new query through the reloaded model, with what each component said:

# %%
prediction = reloaded.predict(["我们晚上到，能带狗吗？车停哪里？"])[0]
print("intents:", prediction.intents)
parts = {
    "calibrated": dict(prediction.scores),
    **{name: dict(scores) for name, scores in prediction.components.items()},
}
pd.DataFrame(parts).round(3).sort_values("calibrated", ascending=False)

# %% [markdown]
# ## Next
# Use the model for retrieval like any classifier: `build_index(chunks, classifier=load_classifier("models/hotel"))`
# tags your documents with the hotel intents and restricts each query's search to them (notebook 01 shows the
# retriever, notebook 04 what it saves in tokens).
