"""The Teams app package of Access Review Bot: manifest, icons, validation and the build command.

``build_package`` writes the zip; ``main`` is the ``python app.py manifest …`` command line.
"""

from manifest.build import DeveloperInfo, build_manifest, build_package, default_sso_resource, main
from manifest.validate import (
    MANIFEST_VERSION,
    SCHEMA_URL,
    ManifestInvalid,
    ManifestSchema,
    Problem,
    SchemaUnusable,
    find_schema,
    validate_package,
)

__all__ = [
    "MANIFEST_VERSION",
    "SCHEMA_URL",
    "DeveloperInfo",
    "ManifestInvalid",
    "ManifestSchema",
    "Problem",
    "SchemaUnusable",
    "build_manifest",
    "build_package",
    "default_sso_resource",
    "find_schema",
    "main",
    "validate_package",
]
