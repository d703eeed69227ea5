"""The analysis components Elasticsearch's security index needs, which the minimal
distribution lacks: a small plugin built from source at the first secured ``up``.

The ``.security`` index (users, roles, API keys) declares an ``email`` analyzer made of the
``uax_url_email`` tokenizer and the ``pattern_capture``, ``lowercase`` and ``unique``
filters. All but ``lowercase`` live in the ``analysis-common`` module, which the
integ-test-zip from Maven Central does not ship and Maven Central does not serve on its
own. Without them the index cannot be created: ``POST /_security/api_key`` answers 400
"Unknown filter type [pattern_capture]". Security itself (TLS, the file realm) works
without the index; API keys do not.

So newsflow builds the three missing components as a *stable* plugin (the plugin API that
Elasticsearch keeps compatible within a major version), against the jars of the
distribution itself (plugin API, Lucene) with the JDK that runs the node, and installs it
in the distribution's ``plugins/`` directory. They wrap Lucene's own classes, configured as
analysis-common configures them; their sources are in ``deploy/stack/es-analysis/``. Read
against Elasticsearch 9.5.4 (Lucene 10.5.1); a version whose security index needs other
components shows it in the same API-key error.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path

from deploy.stack.errors import StackError
from deploy.stack.java import Jdk

log = logging.getLogger(__name__)

PLUGIN = "newsflow-security-analysis"
PACKAGE = "newsflow.analysis"
# The jars of the distribution's lib/ the sources compile against, by name prefix.
COMPILE_JARS = (
    "elasticsearch-plugin-api-",
    "elasticsearch-plugin-analysis-api-",
    "lucene-core-",
    "lucene-analysis-common-",
)
JAVA_RELEASE = "21"  # Elasticsearch 9's minimum, whatever newer JDK compiles it

# The plugin's Java sources, beside this module (packaged with it).
SOURCE_DIR = Path(__file__).with_name("es-analysis") / PACKAGE.replace(".", "/")
SOURCES: dict[str, str] = {p.name: p.read_text() for p in sorted(SOURCE_DIR.glob("*.java"))}

# What Elasticsearch reads instead of scanning the jar: extensible interface -> name -> class.
NAMED_COMPONENTS = {
    "org.elasticsearch.plugin.analysis.TokenFilterFactory": {
        "pattern_capture": f"{PACKAGE}.PatternCapture",
        "unique": f"{PACKAGE}.Unique",
    },
    "org.elasticsearch.plugin.analysis.TokenizerFactory": {
        "uax_url_email": f"{PACKAGE}.UaxUrlEmail",
    },
}


def _digest(es_version: str) -> str:
    text = es_version + json.dumps(SOURCES, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def install(home: Path, jdk: Jdk, es_version: str) -> None:
    """Build the plugin into ``home/plugins`` unless this version of it is there already."""
    target = home / "plugins" / PLUGIN
    descriptor = target / "stable-plugin-descriptor.properties"
    version = _digest(es_version)
    if descriptor.is_file() and f"version={version}\n" in descriptor.read_text():
        return
    javac = jdk.home / "bin" / "javac"
    if not javac.is_file():
        raise StackError(
            f"a secured stack builds a small Elasticsearch plugin, and {jdk.home} has no javac",
            "point NEWSFLOW_STACK_ES_JAVA_HOME at a full JDK (not a JRE) of version 21 or newer",
        )
    jars = [_jar(home / "lib", prefix) for prefix in COMPILE_JARS]
    # Built beside the distribution, not in plugins/: Elasticsearch loads every directory
    # there, and would fail on a half-built one.
    with tempfile.TemporaryDirectory(dir=home.parent, prefix=".plugin-") as scratch:
        work = Path(scratch)
        sources = work / "src"
        sources.mkdir()
        for name, text in SOURCES.items():
            (sources / name).write_text(text)
        classes = work / "classes"
        done = subprocess.run(
            [str(javac), "--release", JAVA_RELEASE, "-d", str(classes), "-cp", ":".join(jars)]
            + [str(sources / name) for name in SOURCES],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise StackError(
                f"building the security index's analysis plugin failed:\n{done.stderr.strip()}",
                f"the plugin is written against Elasticsearch 9.5.4; see {__file__}",
            )
        built = work / PLUGIN
        built.mkdir()
        with zipfile.ZipFile(built / f"{PLUGIN}.jar", "w") as jar:
            for path in sorted(classes.rglob("*.class")):
                jar.write(path, path.relative_to(classes).as_posix())
        (built / "named_components.json").write_text(json.dumps(NAMED_COMPONENTS, indent=2))
        (built / descriptor.name).write_text(
            "description=Analysis components of the security index (newsflow stack)\n"
            f"version={version}\nname={PLUGIN}\njava.version={JAVA_RELEASE}\n"
            f"elasticsearch.version={es_version}\n"
        )
        shutil.rmtree(target, ignore_errors=True)
        built.rename(target)
    log.info("built the Elasticsearch plugin %s (security index analysis)", PLUGIN)


def _jar(lib: Path, prefix: str) -> str:
    found = sorted(p for p in lib.glob(f"{prefix}*.jar") if p.name[len(prefix)].isdigit())
    if not found:
        raise StackError(
            f"the Elasticsearch distribution has no {prefix}*.jar in {lib}",
            "the analysis plugin of a secured stack is written against Elasticsearch 9.5.4",
        )
    return str(found[-1])
