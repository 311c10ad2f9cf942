// Test support: the process's memory mappings, read from /proc/self/maps (Linux).
#pragma once

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace test
{
	struct mapping
	{
		std::uintptr_t begin = 0;
		std::uintptr_t end = 0;
		bool read = false;
		bool write = false;
		bool execute = false;
		std::string name;

		[[nodiscard]] std::string protection() const
		{
			return std::string(read ? "r" : "-") + (write ? "w" : "-") + (execute ? "x" : "-");
		}
	};

	[[nodiscard]] inline std::vector<mapping> read_maps()
	{
		std::vector<mapping> result;
		std::ifstream file("/proc/self/maps");
		std::string line;
		while (std::getline(file, line))
		{
			std::istringstream in(line);
			std::string range;
			std::string perms;
			std::string offset;
			std::string device;
			std::string inode;
			in >> range >> perms >> offset >> device >> inode;
			mapping m;
			const auto dash = range.find('-');
			m.begin = static_cast<std::uintptr_t>(std::stoull(range.substr(0, dash), nullptr, 16));
			m.end = static_cast<std::uintptr_t>(std::stoull(range.substr(dash + 1), nullptr, 16));
			m.read = perms.at(0) == 'r';
			m.write = perms.at(1) == 'w';
			m.execute = perms.at(2) == 'x';
			std::getline(in >> std::ws, m.name);
			result.push_back(m);
		}
		return result;
	}

	/// The mapping that contains `address`, if any.
	[[nodiscard]] inline std::optional<mapping> mapping_of(const void* address)
	{
		const auto a = reinterpret_cast<std::uintptr_t>(address);
		for (const auto& m : read_maps())
			if (a >= m.begin && a < m.end)
				return m;
		return std::nullopt;
	}

	/// Whether `address` lies in one of `maps` (a snapshot: taking one per address would let the allocator reuse a
	/// released range between two reads, as sanitizer runtimes do).
	[[nodiscard]] inline bool is_mapped(const std::vector<mapping>& maps, const void* address)
	{
		const auto a = reinterpret_cast<std::uintptr_t>(address);
		for (const auto& m : maps)
			if (a >= m.begin && a < m.end)
				return true;
		return false;
	}

	/// The protection of `address` in the snapshot `maps` ("r-x", "rw-", "---"), or "unmapped".
	[[nodiscard]] inline std::string protection_in(const std::vector<mapping>& maps, const void* address)
	{
		const auto a = reinterpret_cast<std::uintptr_t>(address);
		for (const auto& m : maps)
			if (a >= m.begin && a < m.end)
				return m.protection();
		return "unmapped";
	}

	/// "r-x", "rw-", "---", or "unmapped".
	[[nodiscard]] inline std::string protection_of(const void* address)
	{
		const auto m = mapping_of(address);
		return m ? m->protection() : std::string("unmapped");
	}

	/// Mappings that are writable and executable at once (there must never be any of ours; the test process itself
	/// has none either).
	[[nodiscard]] inline std::vector<mapping> writable_executable_mappings()
	{
		std::vector<mapping> result;
		for (const auto& m : read_maps())
			if (m.write && m.execute)
				result.push_back(m);
		return result;
	}

	[[nodiscard]] inline std::size_t mapping_count()
	{
		return read_maps().size();
	}

	/// Address space mapped anywhere inside [begin, end).
	[[nodiscard]] inline bool any_mapping_in(std::uintptr_t begin, std::uintptr_t end)
	{
		for (const auto& m : read_maps())
			if (m.begin < end && begin < m.end)
				return true;
		return false;
	}
} // namespace test
