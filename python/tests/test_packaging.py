"""The installed package carries what its metadata promises."""

from importlib import metadata


def test_the_installed_package_ships_both_license_texts_its_metadata_names() -> None:
    dist = metadata.distribution("s4db-rs")
    assert dist.metadata["License-Expression"] == "MIT OR Apache-2.0"
    names = {str(f).rsplit("/", 1)[-1]: f for f in dist.files or [] if "licenses" in str(f)}
    assert set(names) == {"LICENSE-MIT", "LICENSE-APACHE"}
    assert "Permission is hereby granted" in names["LICENSE-MIT"].read_text()
    assert "Apache License" in names["LICENSE-APACHE"].read_text()
