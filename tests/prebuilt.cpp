// Prebuilt stubs: every form of thunk on every way of getting the stubs' code (each way forced), the order in which
// the ways are tried when one is refused, where each way's code lives (seen in /proc/self/maps or VirtualQuery), and
// that no code mapping is ever writable. Built twice: with run-time code (page handles get run-time code unless the
// OS refuses; unique thunks are prebuilt stubs) and with MEMBER_THUNK_NO_RUNTIME_CODE (every thunk is prebuilt).
#include <member_thunk/member_thunk.hpp>

#include "support/backend.hpp"
#include "support/failing_os.hpp"
#include "support/maps.hpp"
#include "support/revoked.hpp"
#include "support/stub_maps.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#if defined(__linux__)
#include <fstream>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#endif

namespace
{
	using callback = long (*)(void*, long);
	using member_thunk::detail::stub_source;
	using member_thunk::detail::stub_sources;
	using test::os_call;
	using test::os_faults;

	struct tagged
	{
		long tag;
		long get(long x) { return tag * 100 + x; }
	};

	/// The default heap, with the members of a heap<Lock>, so that one exercise serves both.
	struct default_heap_ref
	{
		[[nodiscard]] static member_thunk::page allocate_page() { return member_thunk::allocate_page(); }
		template<class Callback, auto Member, class Class>
		[[nodiscard]] static member_thunk::unique_thunk<Callback> make_unique_thunk(Class* that)
		{
			return member_thunk::make_unique_thunk<Callback, Member>(that);
		}
		template<class Callback, class Class, class Member>
		[[nodiscard]] static member_thunk::unique_thunk<Callback> make_unique_thunk(Class* that, Member member)
		{
			return member_thunk::make_unique_thunk<Callback>(that, member);
		}
		template<class Callback, class Callable>
		[[nodiscard]] static member_thunk::unique_thunk<Callback> make_unique_thunk(Callable& callable)
		{
			return member_thunk::make_unique_thunk<Callback>(callable);
		}
		static void compact() { member_thunk::compact(); }
	};

	/// Makes the three forms of page thunk and the three forms of unique thunk from `h`, calls each, and checks the
	/// mappings after each step. Returns where the stubs' code of each came from (stub_origin): the page's first, then
	/// the unique thunks'. A page of run-time code (a build with run-time code allowed) reports "runtime code".
	template<class Heap>
	std::vector<std::string> exercise_every_form(Heap& h)
	{
		std::vector<std::string> origins;
		tagged t{7};
		auto lambda = [&t](long x) { return t.tag * 1000 + x; };
		{
			member_thunk::page p = h.allocate_page();
			const auto compile_time = p.template make_thunk<callback, &tagged::get>(&t);
			const auto run_time = p.template make_thunk<callback>(&t, &tagged::get);
			const auto callable = p.template make_thunk<callback>(lambda);
			INFO(test::code_mapping_problem());
			CHECK(test::code_mapping_problem().empty());
			CHECK(test::protection_of(test::slot_of(p, compile_time)) == "rw-");
			p.mark_executable();
			const auto maps = test::read_maps();
			INFO(test::code_mapping_problem(maps));
			CHECK(test::code_mapping_problem(maps).empty());
			const void* const slot = test::slot_of(p, run_time);
			const test::mapping* const data = test::find_mapping(maps, slot);
			REQUIRE(data != nullptr);
			if (p.prebuilt() && data->contains(reinterpret_cast<std::uintptr_t>(run_time)))
			{
				// qemu-user lists the host's mappings with the protection of their first guest page: a runtime copy
				// of the stubs (read-execute for the guest, read-only for the host) and its sealed data pages merge
				// into one host mapping, listed r-x. A write tells what the maps cannot: the data is read-only.
				INFO("the stubs and their data share one listed mapping: " << test::describe(*data));
				CHECK(data->protection() == "r-x");
				CHECK(test::write_faults(slot));
			}
			else
				CHECK(data->protection() == test::sealed_protection(p.prebuilt()));
			origins.push_back(p.prebuilt() ? test::stub_origin(maps, reinterpret_cast<const void*>(compile_time))
			                               : "runtime code");
			CHECK(compile_time(nullptr, 1) == 701);
			CHECK(run_time(nullptr, 2) == 702);
			CHECK(callable(nullptr, 3) == 7003);
		}
		{
			const auto compile_time = h.template make_unique_thunk<callback, &tagged::get>(&t);
			const auto run_time = h.template make_unique_thunk<callback>(&t, &tagged::get);
			const auto callable = h.template make_unique_thunk<callback>(lambda);
			const auto maps = test::read_maps();
			INFO(test::code_mapping_problem(maps));
			CHECK(test::code_mapping_problem(maps).empty());
			for (const auto* u : {&compile_time, &run_time, &callable})
				origins.push_back(test::stub_origin(maps, reinterpret_cast<const void*>(u->get())));
			CHECK(compile_time.get()(nullptr, 4) == 704);
			CHECK(run_time.get()(nullptr, 5) == 705);
			CHECK(callable.get()(nullptr, 6) == 7006);
		}
		h.compact();
		INFO(test::code_mapping_problem());
		CHECK(test::code_mapping_problem().empty());
		return origins;
	}

	/// Resets the injected faults and the ways around a test.
	struct scope
	{
		scope() { os_faults::reset(); }
		scope(const scope&) = delete;
		scope& operator=(const scope&) = delete;
		scope(scope&&) = delete;
		scope& operator=(scope&&) = delete;
		~scope() { os_faults::reset(); }

		test::stub_sources_scope sources;
	};

	/// The ways this OS has: Linux maps the program's file or a sealed memfd; Windows has neither.
#if defined(_WIN32)
	constexpr bool has_mapping_ways = false;
#else
	constexpr bool has_mapping_ways = true;
#endif

	/// What a page thunk's stubs come from in this build when `way` is forced.
	[[nodiscard]] std::string expected_page_origin(stub_source way)
	{
		return test::prebuilt_build ? test::way_name(way) : "runtime code";
	}
} // namespace

TEST_CASE("prebuilt::every form of thunk works on every way, from the default heap and from heap<Lock>",
          "[prebuilt][ways]")
{
	const scope guard;
	// Windows has two ways; forcing either of the others is the next test's.
#if defined(_WIN32)
	const auto way = GENERATE(stub_source::runtime_copy, stub_source::image_pool);
#else
	const auto way =
	    GENERATE(stub_source::image_file, stub_source::sealed_copy, stub_source::runtime_copy, stub_source::image_pool);
#endif
	INFO("forced way: " << test::way_name(way));
	// Every region of the previous way (if this process made any) is given back first, so new ones take this way.
	member_thunk::compact();
	stub_sources::force(way);
	const std::vector<std::string> expected{expected_page_origin(way), test::way_name(way), test::way_name(way),
	                                        test::way_name(way)};
	SECTION("the default heap")
	{
		default_heap_ref h;
		CHECK(exercise_every_form(h) == expected);
	}
	SECTION("heap<slim_lock>")
	{
		member_thunk::heap<member_thunk::slim_lock> h;
		CHECK(exercise_every_form(h) == expected);
		CHECK(h.statistics().regions == 0); // the suite has no quarantine (tests/CMakeLists.txt)
	}
	SECTION("heap<null_lock> over the failing back end (which only counts)")
	{
		member_thunk::heap<member_thunk::null_lock, test::failing_os> h;
		CHECK(exercise_every_form(h) == expected);
		// The way was taken through the back end's own call.
		if (way == stub_source::image_file)
			CHECK(os_faults::count(os_call::map_image_code) >= 1);
		if (way == stub_source::sealed_copy)
			CHECK(os_faults::count(os_call::map_sealed_copy) >= 1);
		CHECK(h.is_valid());
	}
}

#if defined(_WIN32)
TEST_CASE("prebuilt::Windows: forcing a way Windows lacks fails with a clear os_error", "[prebuilt][ways][windows]")
{
	const scope guard;
	const auto [way, message] =
	    GENERATE(std::pair{stub_source::image_file, "Windows cannot map the program's code again"},
	             std::pair{stub_source::sealed_copy, "Windows has no sealed in-memory files"});
	INFO("forced way: " << test::way_name(way));
	stub_sources::force(way);
	member_thunk::heap<member_thunk::null_lock> h;
	tagged t{1};
	try
	{
		static_cast<void>(h.make_unique_thunk<callback, &tagged::get>(&t));
		FAIL("no exception");
	}
	catch (const member_thunk::os_error& e)
	{
		CHECK_THAT(e.what(),
		           Catch::Contains("could not map prebuilt thunks the way a test forced") && Catch::Contains(message));
	}
	CHECK(h.statistics().regions == 0);
	CHECK(h.is_valid());
}
#endif

// Windows has no way that maps the program's code: nothing there to run out of memory.
#if !defined(_WIN32)
TEST_CASE("prebuilt::a lack of memory while mapping is reported and closes no way", "[prebuilt][ways]")
{
	const scope guard;
	member_thunk::heap<member_thunk::null_lock, test::failing_os> h;
	tagged t{2};
	os_faults::error = ENOMEM;
	os_faults::fail_next(os_call::map_image_code);
	try
	{
		static_cast<void>(h.make_unique_thunk<callback, &tagged::get>(&t));
		FAIL("no exception");
	}
	catch (const member_thunk::os_error& e)
	{
		CHECK(e.code().value() == ENOMEM);
		CHECK_THAT(e.what(), Catch::Contains("could not reserve a region of prebuilt thunks") &&
		                         Catch::Contains("injected map_image_code"));
	}
	CHECK(h.statistics().regions == 0);
	CHECK(os_faults::reservations.empty());
	// The next one maps the program's file: the way is still open.
	const auto u = h.make_unique_thunk<callback, &tagged::get>(&t);
	CHECK(test::stub_origin(reinterpret_cast<const void*>(u.get())) == "image_file");
	CHECK(u.get()(nullptr, 1) == 201);
	CHECK(stub_sources::first.load() == static_cast<int>(stub_source::image_file));
}
#endif

namespace
{
	/// Makes a unique thunk of `h`, calls it and reports where its stubs' code is; checks the mappings.
	template<class Heap>
	std::string unique_origin(Heap& h)
	{
		tagged t{3};
		const auto u = h.template make_unique_thunk<callback, &tagged::get>(&t);
		CHECK(u.get()(nullptr, 1) == 301);
		const auto maps = test::read_maps();
		INFO(test::code_mapping_problem(maps));
		CHECK(test::code_mapping_problem(maps).empty());
		return test::stub_origin(maps, reinterpret_cast<const void*>(u.get()));
	}
} // namespace

#if !defined(MEMBER_THUNK_NO_RUNTIME_CODE)
// The whole order needs run-time code allowed at first (runtime_copy is tried only then): this build's.
TEST_CASE("prebuilt::each refused way falls back to the next: image_file, sealed_copy, runtime_copy, image_pool",
          "[prebuilt][ways]")
{
	const scope guard;
	os_faults::error = EPERM; // a refusal, not a lack of memory: the way is closed for the process
	member_thunk::heap<member_thunk::null_lock, test::failing_os> h;
	if (has_mapping_ways)
	{
		CHECK(unique_origin(h) == "image_file");
		h.compact();
		os_faults::fail_every(os_call::map_image_code);
		CHECK(unique_origin(h) == "sealed_copy");
		h.compact();
		os_faults::fail_every(os_call::map_sealed_copy);
		// A way once refused is not tried again by the process.
		const auto image_calls = os_faults::count(os_call::map_image_code);
		CHECK(unique_origin(h) == "runtime_copy");
		CHECK(os_faults::count(os_call::map_image_code) == image_calls);
		h.compact();
	}
	else
	{
		CHECK(unique_origin(h) == "runtime_copy");
		h.compact();
	}
	// Now the OS refuses to make memory executable, as a W^X policy does: the pool serves, without an exception.
	os_faults::refuse_execution = true;
	CHECK(unique_origin(h) == "image_pool");
	CHECK(stub_sources::first.load() == static_cast<int>(stub_source::image_pool));
	// Page handles: the probe of a new region of run-time code is refused too, and they switch to the pool.
	tagged t{4};
	member_thunk::page p = h.allocate_page();
	CHECK(p.prebuilt());
	CHECK_FALSE(h.statistics().runtime_code);
	const auto thunk = p.make_thunk<callback, &tagged::get>(&t);
	p.mark_executable();
	CHECK(test::stub_origin(reinterpret_cast<const void*>(thunk)) == "image_pool");
	CHECK(thunk(nullptr, 1) == 401);
	CHECK(h.is_valid());
}

TEST_CASE("prebuilt::a W^X refusal when a page is sealed switches the heap to prebuilt pages for good",
          "[prebuilt][switch]")
{
	const scope guard;
	member_thunk::heap<member_thunk::null_lock, test::failing_os> h;
	tagged t{5};
	member_thunk::page first = h.allocate_page();
	CHECK_FALSE(first.prebuilt());
	CHECK(h.statistics().runtime_code);
	const auto refused = first.make_thunk<callback, &tagged::get>(&t);
	os_faults::refuse_execution = true; // the policy came into force after the region was probed
	try
	{
		first.mark_executable();
		FAIL("no exception");
	}
	catch (const member_thunk::os_error& e)
	{
		CHECK(e.code().value() == EACCES);
		CHECK_THAT(e.what(), Catch::Contains("could not make a page executable"));
	}
	CHECK_FALSE(first.executable());
	CHECK(test::protection_of(reinterpret_cast<const void*>(refused)) == "rw-");
	// The next page is prebuilt, from a way that needs no run-time code, and works.
	member_thunk::page next = h.allocate_page();
	CHECK(next.prebuilt());
	CHECK_FALSE(h.statistics().runtime_code);
	const auto thunk = next.make_thunk<callback>(&t, &tagged::get);
	next.mark_executable();
	CHECK(thunk(nullptr, 2) == 502);
	CHECK(test::stub_origin(reinterpret_cast<const void*>(thunk)) == (has_mapping_ways ? "image_file" : "image_pool"));
	// For good: even once the OS allows execution again.
	os_faults::refuse_execution = false;
	const member_thunk::page later = h.allocate_page();
	CHECK(later.prebuilt());
	CHECK(h.is_valid());
}
#else
TEST_CASE("prebuilt::with MEMBER_THUNK_NO_RUNTIME_CODE no heap ever makes run-time code", "[prebuilt][switch]")
{
	const scope guard;
	member_thunk::heap<member_thunk::null_lock, test::failing_os> h;
	CHECK_FALSE(h.statistics().runtime_code);
	tagged t{6};
	member_thunk::page p = h.allocate_page();
	CHECK(p.prebuilt());
	static_cast<void>(p.make_thunk<callback, &tagged::get>(&t));
	p.mark_executable();
	const auto u = h.make_unique_thunk<callback, &tagged::get>(&t);
	// Nothing was ever made executable, not even probed: the stubs came from a way that writes no code.
	CHECK(os_faults::count(os_call::probe_executable) == 0);
	CHECK(os_faults::count(os_call::make_executable) == 0);
	CHECK(os_faults::count(os_call::flush_instruction_cache) == 0);
	CHECK(h.statistics().prebuilt_regions == h.statistics().regions);
	CHECK(test::stub_origin(reinterpret_cast<const void*>(u.get())) ==
	      (has_mapping_ways ? "image_file" : "image_pool"));
	CHECK(member_thunk::allocate_page().prebuilt());
}
#endif

TEST_CASE("prebuilt::with run-time code refused and both mapping ways failing, the image pool serves",
          "[prebuilt][pool]")
{
	const scope guard;
	os_faults::error = EPERM;
	os_faults::refuse_execution = true;
	os_faults::fail_every(os_call::map_image_code);
	os_faults::fail_every(os_call::map_sealed_copy);
	member_thunk::heap<member_thunk::null_lock, test::failing_os> h;
	tagged t{7};
	member_thunk::page p = h.allocate_page();
	CHECK(p.prebuilt());
	const auto thunk = p.make_thunk<callback, &tagged::get>(&t);
	const void* const slot = test::slot_of(p, thunk);
	// The pool's data is the program's .bss, its stubs the program's code.
	CHECK(member_thunk::detail::stubs::pool_data() <= slot);
	CHECK(slot < member_thunk::detail::stubs::pool_data() + member_thunk::detail::stubs::pool_size);
	CHECK(test::protection_of(slot) == "rw-");
	p.mark_executable();
	CHECK(test::protection_of(slot) == "r--");
	CHECK(test::stub_origin(reinterpret_cast<const void*>(thunk)) == "image_pool");
	CHECK(thunk(nullptr, 1) == 701);
	const auto u = h.make_unique_thunk<callback>(&t, &tagged::get);
	CHECK(test::stub_origin(reinterpret_cast<const void*>(u.get())) == "image_pool");
	CHECK(u.get()(nullptr, 2) == 702);
	INFO(test::code_mapping_problem());
	CHECK(test::code_mapping_problem().empty());
	CHECK(h.statistics().prebuilt_regions == 2); // one pool page per region: the page, and the slab
	CHECK(member_thunk::detail::image_pool_regions<test::failing_os>::pages_taken() == 2);
	p = h.allocate_page(); // the sealed page goes back: made writable and emptied
	CHECK(test::slot_traps(slot));
	CHECK(test::revocation_of(slot) == "cached");
}

#if defined(_WIN32)
TEST_CASE("prebuilt::Windows: with executable memory refused, thunks come from the image pool (MEM_IMAGE)",
          "[prebuilt][pool][windows]")
{
	const scope guard;
	os_faults::refuse_execution = true; // VirtualAlloc/VirtualProtect to executable refused, as under ACG
	member_thunk::heap<member_thunk::null_lock, test::failing_os> h;
	tagged t{8};
	member_thunk::page p = h.allocate_page();
	CHECK(p.prebuilt());
	const auto thunk = p.make_thunk<callback, &tagged::get>(&t);
	p.mark_executable();
	const auto u = h.make_unique_thunk<callback, &tagged::get>(&t);
	for (const auto address : {reinterpret_cast<const void*>(thunk), reinterpret_cast<const void*>(u.get())})
	{
		const auto m = test::mapping_of(address);
		REQUIRE(m);
		CHECK(m->name == "image"); // VirtualQuery: MEM_IMAGE
		CHECK(m->protection() == "r-x");
	}
	CHECK(thunk(nullptr, 1) == 801);
	CHECK(u.get()(nullptr, 2) == 802);
	CHECK(test::writable_executable_mappings().empty());
}
#endif

#if defined(__linux__) && defined(MEMBER_THUNK_TEST_DELETED_BINARY)
namespace
{
	/// Runs `argv` (the emulator's words first, if the tests run under one), returns its exit status and stdout.
	std::pair<int, std::string> run_program(std::vector<std::string> argv)
	{
		int fds[2];
		REQUIRE(::pipe(fds) == 0);
		std::fflush(nullptr);
		const pid_t pid = ::fork();
		REQUIRE(pid >= 0);
		if (pid == 0)
		{
			::close(fds[0]);
			::dup2(fds[1], STDOUT_FILENO);
			std::vector<char*> args;
			for (auto& a : argv)
				args.push_back(a.data());
			args.push_back(nullptr);
			::execvp(args[0], args.data());
			::_exit(127);
		}
		::close(fds[1]);
		std::string output;
		char buffer[512];
		ssize_t n = 0;
		while ((n = ::read(fds[0], buffer, sizeof buffer)) > 0)
			output.append(buffer, static_cast<std::size_t>(n));
		::close(fds[0]);
		int status = 0;
		while (::waitpid(pid, &status, 0) < 0)
		{
		}
		return {WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), output};
	}
} // namespace

TEST_CASE("prebuilt::a program whose file was deleted after it started still makes thunks", "[prebuilt][deleted]")
{
	// A copy of a small program (programs/deleted_binary.cpp, built without run-time code) deletes its own file, then
	// makes unique thunks and a page. Linux keeps a running program's file alive and /proc/self/exe still opens it, so
	// the image_file way still maps the stubs from it: /proc/self/maps names it "<path> (deleted)". Thunks work either
	// way: where the file cannot be opened any more (qemu-user), the next way serves.
	char directory[] = "/tmp/member_thunk_deleted_XXXXXX";
	REQUIRE(::mkdtemp(directory) != nullptr);
	const std::string copy = std::string(directory) + "/deleted_binary";
	{
		std::ifstream in(MEMBER_THUNK_TEST_DELETED_BINARY, std::ios::binary);
		std::ofstream out(copy, std::ios::binary);
		REQUIRE(in);
		out << in.rdbuf();
		REQUIRE(out);
	}
	REQUIRE(::chmod(copy.c_str(), 0755) == 0);
	std::vector<std::string> argv;
	const std::string emulator = MEMBER_THUNK_TEST_EMULATOR;
	for (std::size_t at = 0; at < emulator.size();)
	{
		const std::size_t end = std::min(emulator.find('|', at), emulator.size()); // words separated by |
		if (end > at)
			argv.push_back(emulator.substr(at, end - at));
		at = end + 1;
	}
	argv.push_back(copy);
	const auto [status, output] = run_program(argv);
	INFO("output:\n" << output);
	CHECK(status == 0);
	CHECK(::access(copy.c_str(), F_OK) != 0); // it deleted itself
	::rmdir(directory);
	CHECK_THAT(output, Catch::Contains("calls=ok"));
	if (emulator.empty())
	{
		CHECK_THAT(output, Catch::Contains("deleted=" + copy + " (deleted)"));
		CHECK_THAT(output, Catch::Contains("origin=image_file"));
		CHECK_THAT(output, Catch::Contains("page=image_file"));
	}
	else
	{
		// Under qemu-user the program's /proc/self/exe is emulated: once the file is deleted it resolves to nothing
		// and cannot be opened, so image_file is refused and the sealed memfd serves.
		CHECK_THAT(output, Catch::Contains("deleted=\n"));
		CHECK_THAT(output, Catch::Contains("origin=sealed_copy"));
		CHECK_THAT(output, Catch::Contains("page=sealed_copy"));
	}
}
#endif
