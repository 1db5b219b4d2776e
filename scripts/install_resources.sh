#!/usr/bin/env bash
# Install the non-PyPI resources that brainview's caption metrics need, idempotently.
#
#   bash scripts/install_resources.sh [PYTHON]
#
# - WordNet 3.0 for nltk's METEOR: Debian's `wordnet-base` + `wordnet-sense-index` ship the
#   WordNet 3.0 database files in /usr/share/wordnet; they are COPIED (not linked) into an
#   nltk corpus folder <repo>/.nltk_data/corpora/wordnet/ together with a generated `lexnames`
#   file (nltk's WordNetCorpusReader needs it; Debian does not ship it). brainview finds that
#   folder itself (see brainview/decoding/metric_resources.py: $BRAINVIEW_NLTK_DATA, then <repo>/.nltk_data,
#   then nltk's own search path). Set BRAINVIEW_NLTK_DATA to build it elsewhere.
# - Java (default-jre-headless) for pycocoevalcap's METEOR 1.5; skipped when `java` exists.
#
# As root, missing Debian packages are installed with apt-get. Otherwise a warning is printed
# and the script carries on: the metrics concerned are then reported as missing, with the
# reason, never as 0. PYTHON (default: <repo>/.venv/bin/python, else python3) is only used to
# check that nltk can read the built corpus.
set -u

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${1:-}"
if [ -z "$PY" ]; then
    if [ -x "$REPO/.venv/bin/python" ]; then PY="$REPO/.venv/bin/python"; else PY="python3"; fi
fi
NLTK_DATA_DIR="${BRAINVIEW_NLTK_DATA:-$REPO/.nltk_data}"
WN_SRC="/usr/share/wordnet"
WN_DEST="$NLTK_DATA_DIR/corpora/wordnet"
WN_FILES="adj.exc adv.exc noun.exc verb.exc data.adj data.adv data.noun data.verb
index.adj index.adv index.noun index.verb index.sense cntlist.rev"

say()  { echo "[install_resources] $*"; }
warn() { echo "[install_resources] WARNING: $*" >&2; }

is_root() { [ "$(id -u)" = "0" ]; }

# --- Debian packages --------------------------------------------------------------------
need_pkgs=()
for f in data.noun index.noun; do
    [ -f "$WN_SRC/$f" ] || { need_pkgs+=(wordnet-base); break; }
done
[ -f "$WN_SRC/index.sense" ] || need_pkgs+=(wordnet-sense-index)
if ! command -v java >/dev/null 2>&1; then need_pkgs+=(default-jre-headless); fi

if [ "${#need_pkgs[@]}" -gt 0 ]; then
    if is_root && command -v apt-get >/dev/null 2>&1; then
        say "installing ${need_pkgs[*]} with apt-get"
        export DEBIAN_FRONTEND=noninteractive
        if ! apt-get install -y --no-install-recommends "${need_pkgs[@]}" >/tmp/brainview-apt.log 2>&1; then
            # a fresh machine has no package lists yet
            apt-get update >>/tmp/brainview-apt.log 2>&1 || true
            apt-get install -y --no-install-recommends "${need_pkgs[@]}" >>/tmp/brainview-apt.log 2>&1 \
                || warn "apt-get install ${need_pkgs[*]} failed (log: /tmp/brainview-apt.log); the metrics that need them will be reported missing"
        fi
    else
        warn "missing system packages: ${need_pkgs[*]} (not root or no apt-get; install them as root:"
        warn "  apt-get install -y ${need_pkgs[*]}). METEOR (nltk) and/or pycocoevalcap METEOR 1.5 will be reported missing."
    fi
else
    say "system packages present (wordnet-base, wordnet-sense-index, java)"
fi

# --- nltk WordNet corpus folder ---------------------------------------------------------
wn_complete() {
    [ -s "$WN_DEST/lexnames" ] || return 1
    for f in $WN_FILES; do [ -s "$WN_DEST/$f" ] || return 1; done
    return 0
}

if wn_complete; then
    say "nltk WordNet corpus already built in $WN_DEST"
else
    missing_src=0
    for f in $WN_FILES; do [ -f "$WN_SRC/$f" ] || { missing_src=1; warn "$WN_SRC/$f not found"; }; done
    if [ "$missing_src" = "1" ]; then
        warn "cannot build the nltk WordNet corpus (install wordnet-base and wordnet-sense-index); METEOR will be reported missing"
    else
        tmp="$WN_DEST.tmp.$$"
        rm -rf "$tmp" && mkdir -p "$tmp" || { warn "cannot create $tmp"; exit 0; }
        for f in $WN_FILES; do cp -L "$WN_SRC/$f" "$tmp/$f"; done
        # lexnames(5WN) of WordNet 3.0: file number, name, syntactic category (1 n, 2 v, 3 a, 4 r)
        i=0
        for name in adj.all adj.pert adv.all noun.Tops noun.act noun.animal noun.artifact \
            noun.attribute noun.body noun.cognition noun.communication noun.event noun.feeling \
            noun.food noun.group noun.location noun.motive noun.object noun.person noun.phenomenon \
            noun.plant noun.possession noun.process noun.quantity noun.relation noun.shape \
            noun.state noun.substance noun.time verb.body verb.change verb.cognition \
            verb.communication verb.competition verb.consumption verb.contact verb.creation \
            verb.emotion verb.motion verb.perception verb.possession verb.social verb.stative \
            verb.weather adj.ppl; do
            case "$name" in noun.*) pos=1;; verb.*) pos=2;; adj.*) pos=3;; adv.*) pos=4;; esac
            printf '%02d\t%s\t%d\n' "$i" "$name" "$pos" >>"$tmp/lexnames"
            i=$((i + 1))
        done
        cat >"$tmp/README.brainview" <<EOF
WordNet 3.0 (Princeton University, WordNet license, see /usr/share/doc/wordnet-base/copyright),
copied from Debian's wordnet-base and wordnet-sense-index by brainview's scripts/install_resources.sh;
lexnames generated from lexnames(5WN).
EOF
        rm -rf "$WN_DEST" && mkdir -p "$(dirname "$WN_DEST")" && mv "$tmp" "$WN_DEST"
        say "built nltk WordNet corpus in $WN_DEST"
    fi
fi

# --- check that nltk reads it -----------------------------------------------------------
if wn_complete && "$PY" -c "import nltk" >/dev/null 2>&1; then
    if "$PY" - "$NLTK_DATA_DIR" <<'EOF'
import os, sys, warnings
warnings.simplefilter("ignore")
import nltk
nltk.data.path.append(sys.argv[1])  # nltk >= 3.9 only opens files under its data path
from nltk.corpus.reader.wordnet import WordNetCorpusReader
wn = WordNetCorpusReader(os.path.join(sys.argv[1], "corpora", "wordnet"), None)
assert wn.get_version() == "3.0", wn.get_version()
assert wn.synsets("dog")[0].name() == "dog.n.01"
EOF
    then say "nltk reads WordNet 3.0 from $WN_DEST"
    else warn "nltk could not read $WN_DEST; METEOR will be reported missing"
    fi
elif wn_complete; then
    say "skipped the nltk read check: $PY cannot import nltk (pass the project's python as \$1)"
fi
if command -v java >/dev/null 2>&1; then say "java: $(command -v java)"; else warn "no java: pycocoevalcap METEOR 1.5 will be reported missing"; fi
exit 0
