# Shared by the scripts in this folder: install missing Debian packages, once, as root.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# ensure_packages PKG...: installs those not yet installed (needs root and Debian's package registry).
ensure_packages() {
	local missing=()
	for package in "$@"; do
		dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
	done
	if [ "${#missing[@]}" -ne 0 ]; then
		echo "== installing Debian packages: ${missing[*]}"
		local sudo=()
		[ "$(id -u)" -eq 0 ] || sudo=(sudo)
		"${sudo[@]}" apt-get update -qq
		DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	fi
}

# ensure_foreign_architecture ARCH: lets apt install ARCH packages next to the host's (multiarch), once.
ensure_foreign_architecture() {
	if ! dpkg --print-foreign-architectures | grep -qx "$1"; then
		echo "== adding the $1 architecture to dpkg"
		local sudo=()
		[ "$(id -u)" -eq 0 ] || sudo=(sudo)
		"${sudo[@]}" dpkg --add-architecture "$1"
		"${sudo[@]}" apt-get update -qq
	fi
}

build_packages=(cmake ninja-build g++ libmsgsl-dev)
test_packages=(clang catch2 librapidcheck-dev clang-tidy clang-format libbenchmark-dev libffi-dev pkg-config libseccomp-dev)
# Cross targets: Linux AArch64 under qemu-user (RapidCheck's arm64 library through multiarch), and Linux i386, run
# natively with the cross toolchain's own libraries (RapidCheck's and libseccomp's i386 libraries through multiarch);
# Windows x64 with mingw-w64 (posix threads), run under wine.
cross_packages=(g++-aarch64-linux-gnu qemu-user librapidcheck-dev:arm64 g++-i686-linux-gnu librapidcheck-dev:i386
	libseccomp-dev:i386 g++-mingw-w64-x86-64-posix wine64 wine)
