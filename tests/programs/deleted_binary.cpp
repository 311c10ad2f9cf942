// A small program for prebuilt.cpp's test of a binary deleted after start: it deletes its own file, then makes unique
// thunks of every form from the default heap, calls them, and reports on stdout where their stubs' code came from.
// Exit status 0 when everything worked; otherwise the line that failed is on stderr.
#include <member_thunk/member_thunk.hpp>

#include "../support/stub_maps.hpp"

#include <climits>
#include <cstddef>
#include <cstdio>
#include <string>

#include <unistd.h>

namespace
{
	struct tagged
	{
		long tag;
		long get(long x) { return tag * 100 + x; }
	};

	int fail(const char* what)
	{
		std::fprintf(stderr, "deleted_binary: %s\n", what);
		return 1;
	}
} // namespace

int main()
{
	const std::string self = test::program_path();
	if (self.empty() || ::unlink(self.c_str()) != 0)
		return fail("could not delete its own file");
	if (::access(self.c_str(), F_OK) == 0)
		return fail("its file still exists");
	// Linux names a deleted program's file "<path> (deleted)" in /proc/self/exe and /proc/self/maps.
	char now[PATH_MAX];
	const ssize_t length = ::readlink("/proc/self/exe", now, sizeof now - 1);
	std::printf("deleted=%s\n", length > 0 ? std::string(now, static_cast<std::size_t>(length)).c_str() : "");
	using callback = long (*)(void*, long);
	tagged t{4};
	auto lambda = [&t](long x) { return t.tag + x; };
	try
	{
		const auto compile_time = member_thunk::make_unique_thunk<callback, &tagged::get>(&t);
		const auto run_time = member_thunk::make_unique_thunk<callback>(&t, &tagged::get);
		const auto callable = member_thunk::make_unique_thunk<callback>(lambda);
		if (compile_time.get()(nullptr, 1) != 401 || run_time.get()(nullptr, 2) != 402 ||
		    callable.get()(nullptr, 3) != 7)
			return fail("a unique thunk returned a wrong result");
		const std::string problem = test::code_mapping_problem();
		if (!problem.empty())
			return fail(problem.c_str());
		std::printf("origin=%s\n", test::stub_origin(reinterpret_cast<const void*>(compile_time.get())).c_str());
		member_thunk::page p = member_thunk::allocate_page();
		const auto thunk = p.make_thunk<callback, &tagged::get>(&t);
		p.mark_executable();
		if (thunk(nullptr, 5) != 405)
			return fail("a page's thunk returned a wrong result");
		std::printf("page=%s\n",
		            p.prebuilt() ? test::stub_origin(reinterpret_cast<const void*>(thunk)).c_str() : "runtime code");
	}
	catch (const std::exception& e)
	{
		return fail(e.what());
	}
	std::printf("calls=ok\n");
	return 0;
}
