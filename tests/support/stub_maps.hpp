// Test support: where the code of prebuilt stubs lives, as the process's mappings show it, and the checks that no
// mapping of it is ever writable.
//
// The ways (detail/prebuilt_regions.hpp) leave distinct traces in /proc/self/maps: image_file maps the program's own
// file read-execute (private), sealed_copy maps a memfd named "member_thunk stubs" (shared), runtime_copy leaves
// anonymous read-execute pages, and the image pool is the program's own code. On Windows, VirtualQuery tells image
// memory (the pool, MEM_IMAGE) from private memory (a runtime copy).
#pragma once

#include "maps.hpp"

#include <member_thunk/member_thunk.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#if !defined(_WIN32)
#include <climits>
#include <unistd.h>
#endif

namespace test
{
	/// Whether `stub` is one of the image pool's stubs (the program's code).
	[[nodiscard]] inline bool in_image_pool(const void* stub)
	{
		const auto* const tables = member_thunk::detail::stubs::pool_tables();
		const auto* const at = static_cast<const std::byte*>(stub);
		return at >= tables && at < tables + 2 * member_thunk::detail::stubs::pool_size;
	}

#if !defined(_WIN32)
	/// The program's own file, as /proc/self/maps names it (with " (deleted)" after it once the file is deleted).
	/// Read once, at the first call: qemu-user cannot resolve /proc/self/exe any more once the file is gone.
	[[nodiscard]] inline std::string program_path()
	{
		static const std::string path = [] {
			char buffer[PATH_MAX];
			const ssize_t n = ::readlink("/proc/self/exe", buffer, sizeof buffer - 1);
			return n > 0 ? std::string(buffer, static_cast<std::size_t>(n)) : std::string();
		}();
		return path;
	}

	inline constexpr const char* memfd_name = "/memfd:member_thunk stubs";

	[[nodiscard]] inline bool starts_with(const std::string& text, const std::string& prefix)
	{
		return text.compare(0, prefix.size(), prefix) == 0;
	}
#endif

	/// Where the code of `stub` lives: "image_pool", "image_file", "sealed_copy" or "runtime_copy" (the way that
	/// leaves such a mapping), or a description of something else.
	[[nodiscard]] inline std::string stub_origin(const std::vector<mapping>& maps, const void* stub)
	{
		const mapping* const m = find_mapping(maps, stub);
		if (m == nullptr)
			return "unmapped";
		if (m->protection() != "r-x")
			return "a mapping that is " + m->protection();
		if (in_image_pool(stub))
		{
#if defined(_WIN32)
			return m->name == "image" ? "image_pool" : "the pool's address outside the image";
#else
			return m->name == program_path() ? "image_pool" : "the pool's address outside the program: " + m->name;
#endif
		}
#if defined(_WIN32)
		return m->name == "private" ? "runtime_copy" : "a mapping of kind " + m->name;
#else
		if (m->name.empty())
			return "runtime_copy";
		if (starts_with(m->name, memfd_name))
			return m->shared ? "sealed_copy" : "a private mapping of the memfd";
		if (starts_with(m->name, program_path()))
			return m->shared ? "a shared mapping of the program" : "image_file";
		return "a mapping of " + m->name;
#endif
	}

	[[nodiscard]] inline std::string stub_origin(const void* stub)
	{
		return stub_origin(read_maps(), stub);
	}

	/// The way's name, as stub_origin reports it.
	[[nodiscard]] inline std::string way_name(member_thunk::detail::stub_source way)
	{
		switch (way)
		{
		case member_thunk::detail::stub_source::image_file:
			return "image_file";
		case member_thunk::detail::stub_source::sealed_copy:
			return "sealed_copy";
		case member_thunk::detail::stub_source::runtime_copy:
			return "runtime_copy";
		case member_thunk::detail::stub_source::image_pool:
			return "image_pool";
		}
		return "?";
	}

	/// The first thing wrong with the code mappings of `maps`, or "" if nothing is: no mapping is writable and
	/// executable; no writable mapping of the stubs' memfd exists; and no writable mapping of the program's file covers
	/// a part of it that is mapped executable (its data segments are mapped writable, copy on write, elsewhere).
	[[nodiscard]] inline std::string code_mapping_problem(const std::vector<mapping>& maps)
	{
		for (const auto& m : maps)
			if (m.write && m.execute)
				return "writable and executable: " + describe(m);
#if !defined(_WIN32)
		const std::string program = program_path();
		for (const auto& w : maps)
		{
			if (!w.write || w.name.empty())
				continue;
			if (starts_with(w.name, memfd_name))
				return "a writable mapping of the stubs' memfd: " + describe(w);
			if (w.name != program && w.name != program + " (deleted)")
				continue;
			for (const auto& x : maps)
				if (x.execute && x.name == w.name && w.offset < x.offset + (x.end - x.begin) &&
				    x.offset < w.offset + (w.end - w.begin))
					return "a writable mapping of the program's code: " + describe(w) + " over " + describe(x);
		}
#endif
		return "";
	}

	[[nodiscard]] inline std::string code_mapping_problem()
	{
		return code_mapping_problem(read_maps());
	}
} // namespace test
