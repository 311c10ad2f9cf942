// Closures given to real C APIs whose callbacks carry no user data: qsort and bsearch with stateful comparators;
// on POSIX nftw with a member visitor, sigaction with member handlers, pthread_once and atexit with void()
// closures; on Windows the C runtime's signal and atexit, a vectored exception handler and a WH_GETMESSAGE hook
// (HOOKPROC, whose int first parameter a thunk could not replace). Made on pages and as unique closures.
#include <member_thunk/member_thunk.hpp>

#include "support/child.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <csignal>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#if defined(_WIN32)
#include <member_thunk/detail/os/windows_sdk.hpp>
#else
#include <ftw.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

#if !defined(MEMBER_THUNK_ARCH_X86_32)
namespace
{
	using comparator = int (*)(const void*, const void*);

	struct record
	{
		int id;
		int score;
		int age;
	};

	/// A comparator with state: it sorts by the field chosen at run time and counts its calls.
	class sorter
	{
	public:
		enum class key
		{
			score,
			age
		};

		explicit sorter(key k) : key_(k) {}

		int compare(const void* a, const void* b)
		{
			++calls_;
			const auto& x = *static_cast<const record*>(a);
			const auto& y = *static_cast<const record*>(b);
			const int left = key_ == key::score ? x.score : x.age;
			const int right = key_ == key::score ? y.score : y.age;
			if (left != right)
				return left < right ? -1 : 1;
			return x.id < y.id ? -1 : (x.id > y.id ? 1 : 0); // ties by id: one order only
		}

		[[nodiscard]] std::size_t calls() const { return calls_; }

	private:
		key key_;
		std::size_t calls_ = 0;
	};

	std::vector<record> records()
	{
		std::vector<record> out;
		for (int i = 0; i < 50; ++i)
			out.push_back({i, (i * 37) % 11, (i * 13) % 17});
		return out;
	}

	bool sorted_by(const std::vector<record>& v, sorter::key k)
	{
		sorter reference(k);
		return std::is_sorted(v.begin(), v.end(),
		                      [&](const record& a, const record& b) { return reference.compare(&a, &b) < 0; });
	}

	/// Looks a value up, counting the probes.
	class finder
	{
	public:
		int compare(const void* key, const void* element)
		{
			++probes_;
			const int wanted = *static_cast<const int*>(key);
			const int here = *static_cast<const int*>(element);
			return wanted < here ? -1 : (wanted > here ? 1 : 0);
		}

		[[nodiscard]] int probes() const { return probes_; }

	private:
		int probes_ = 0;
	};
} // namespace

TEST_CASE("closures_c_apis::qsort with a stateful member comparator, by a key chosen at run time", "[closures][c_apis]")
{
	for (const auto k : {sorter::key::score, sorter::key::age})
	{
		sorter by_key(k);
		member_thunk::page p = member_thunk::allocate_page();
		const comparator compare = p.make_closure<comparator, &sorter::compare>(&by_key);
		p.mark_executable();
		std::vector<record> v = records();
		std::qsort(v.data(), v.size(), sizeof(record), compare);
		CHECK(sorted_by(v, k));
		CHECK_FALSE(sorted_by(v, k == sorter::key::score ? sorter::key::age : sorter::key::score));
		CHECK(by_key.calls() >= v.size() - 1); // every comparison went through the closure, to this object

		// The same with a unique closure and a run-time member pointer.
		sorter again(k);
		const auto unique = member_thunk::make_unique_closure<comparator>(&again, &sorter::compare);
		std::vector<record> w = records();
		std::qsort(w.data(), w.size(), sizeof(record), unique.get());
		CHECK(sorted_by(w, k));
		CHECK(again.calls() >= w.size() - 1);
	}
}

TEST_CASE("closures_c_apis::bsearch with a counting member comparator", "[closures][c_apis]")
{
	std::array<int, 1000> values{};
	for (std::size_t i = 0; i < values.size(); ++i)
		values.at(i) = static_cast<int>(3 * i + 1);
	finder f;
	member_thunk::page p = member_thunk::allocate_page();
	const comparator compare = p.make_closure<comparator>(&f, &finder::compare);
	p.mark_executable();
	const int wanted = 3 * 617 + 1;
	const void* const found = std::bsearch(&wanted, values.data(), values.size(), sizeof(int), compare);
	REQUIRE(found != nullptr);
	CHECK(static_cast<const int*>(found) == &values.at(617));
	CHECK(f.probes() >= 1);
	CHECK(f.probes() <= 10); // a binary search of 1000 values: at most ceil(log2(1001)) probes
	const int missing = 5;   // between 4 and 7
	CHECK(std::bsearch(&missing, values.data(), values.size(), sizeof(int), compare) == nullptr);

	// A lambda with a capture, as a unique closure.
	int lambda_probes = 0;
	auto by_lambda = [&lambda_probes](const void* key, const void* element) {
		++lambda_probes;
		return *static_cast<const int*>(key) - *static_cast<const int*>(element);
	};
	const auto unique = member_thunk::make_unique_closure<comparator>(by_lambda);
	const int first = 1;
	CHECK(std::bsearch(&first, values.data(), values.size(), sizeof(int), unique.get()) == values.data());
	CHECK(lambda_probes >= 1);
}

namespace
{
	/// Writes "at exit: <name>" to stderr.
	struct exit_reporter
	{
		const char* name;
		void report() { std::fprintf(stderr, "at exit: %s\n", name); }
	};
} // namespace

TEST_CASE("closures_c_apis::atexit runs void() closures, last registered first", "[closures][c_apis]")
{
	const auto result = test::run_in_child([] {
		// Static: they outlive the exit handlers, whose registration comes after their construction.
		static exit_reporter first{"first"};
		static exit_reporter second{"second"};
		static member_thunk::page p = member_thunk::allocate_page();
		static const auto on_first = p.make_closure<void (*)(), &exit_reporter::report>(&first);
		p.mark_executable();
		static const auto on_second = member_thunk::make_unique_closure<void (*)()>(&second, &exit_reporter::report);
		if (std::atexit(on_first) != 0 || std::atexit(on_second.get()) != 0)
			std::_Exit(3);
		std::exit(0);
	});
	CHECK(result.exited);
	CHECK(result.exit_code == 0);
	// The child's standard error is in text mode: on Windows each line ends in "\r\n".
	std::string output = result.error_output;
	std::erase(output, '\r');
	CHECK(output == "at exit: second\nat exit: first\n");
}

#if defined(_WIN32)
namespace
{
	/// Counts the C runtime's signals.
	struct signal_counter
	{
		int signals = 0;
		int last = 0;
		void on_signal(int signo)
		{
			++signals;
			last = signo;
		}
	};

	/// A vectored exception handler that continues after one exception code of its own.
	struct resumer
	{
		static constexpr DWORD code = 0xE0C1'05E5;
		int seen = 0;
		LONG handle(EXCEPTION_POINTERS* info)
		{
			if (info->ExceptionRecord->ExceptionCode != code)
				return EXCEPTION_CONTINUE_SEARCH; // C++ exceptions and everything else pass
			++seen;
			return EXCEPTION_CONTINUE_EXECUTION;
		}
	};

	/// A WH_GETMESSAGE hook: sees each message the thread takes from its queue.
	struct message_watcher
	{
		std::vector<UINT> messages;
		LRESULT on_get_message(int code, WPARAM remove, LPARAM message)
		{
			if (code == HC_ACTION)
				messages.push_back(reinterpret_cast<const MSG*>(message)->message);
			return CallNextHookEx(nullptr, code, remove, message);
		}
	};
} // namespace

TEST_CASE("closures_c_apis::the C runtime's signal and raise call a member", "[closures][c_apis]")
{
	signal_counter counter;
	member_thunk::page p = member_thunk::allocate_page();
	const auto handler = p.make_closure<void (*)(int), &signal_counter::on_signal>(&counter);
	p.mark_executable();
	const auto previous = std::signal(SIGINT, handler);
	REQUIRE(previous != SIG_ERR);
	CHECK(std::raise(SIGINT) == 0);
	std::signal(SIGINT, previous);
	CHECK(counter.signals == 1);
	CHECK(counter.last == SIGINT);
}

TEST_CASE("closures_c_apis::a vectored exception handler (no user data) is a member", "[closures][c_apis]")
{
	resumer r;
	const auto handler = member_thunk::make_unique_closure<PVECTORED_EXCEPTION_HANDLER, &resumer::handle>(&r);
	void* const registration = AddVectoredExceptionHandler(1, handler.get());
	REQUIRE(registration != nullptr);
	RaiseException(resumer::code, 0, 0, nullptr);
	RaiseException(resumer::code, 0, 0, nullptr);
	// A C++ exception raised meanwhile passes through the handler untouched.
	CHECK_THROWS_AS(throw std::runtime_error("passes"), std::runtime_error);
	RemoveVectoredExceptionHandler(registration);
	CHECK(r.seen == 2);
}

TEST_CASE("closures_c_apis::a WH_GETMESSAGE hook (HOOKPROC, an int first) is a member", "[closures][c_apis]")
{
	message_watcher watcher;
	member_thunk::page p = member_thunk::allocate_page();
	const HOOKPROC hook = p.make_closure<HOOKPROC, &message_watcher::on_get_message>(&watcher);
	p.mark_executable();
	MSG msg{};
	PeekMessageW(&msg, nullptr, 0, 0, PM_NOREMOVE); // gives the thread its message queue
	const HHOOK installed = SetWindowsHookExW(WH_GETMESSAGE, hook, nullptr, GetCurrentThreadId());
	REQUIRE(installed != nullptr);
	REQUIRE(PostThreadMessageW(GetCurrentThreadId(), WM_APP + 7, 1, 2) != 0);
	REQUIRE(PostThreadMessageW(GetCurrentThreadId(), WM_APP + 8, 3, 4) != 0);
	while (PeekMessageW(&msg, nullptr, 0, 0, PM_REMOVE) != 0)
	{
	}
	UnhookWindowsHookEx(installed);
	CHECK(watcher.messages == std::vector<UINT>{WM_APP + 7, WM_APP + 8});
}
#else
namespace
{
	/// Walks a directory tree: records each entry's path below the root, its kind and depth.
	class tree_visitor
	{
	public:
		explicit tree_visitor(std::string root) : root_(std::move(root)) {}

		int visit(const char* path, const struct stat* info, int kind, struct FTW* where)
		{
			std::string relative = std::string(path).substr(root_.size());
			const char tag = kind == FTW_D || kind == FTW_DP ? 'd' : (kind == FTW_F ? 'f' : '?');
			seen_.push_back(std::string(1, tag) + std::to_string(where->level) + ":" + relative + ":" +
			                (tag == 'f' ? std::to_string(info->st_size) : std::string("-")));
			return 0;
		}

		[[nodiscard]] std::vector<std::string> seen() const
		{
			std::vector<std::string> sorted = seen_;
			std::sort(sorted.begin(), sorted.end());
			return sorted;
		}

	private:
		std::string root_;
		std::vector<std::string> seen_;
	};

	void write_file(const std::string& path, const std::string& contents)
	{
		std::FILE* const f = std::fopen(path.c_str(), "wb");
		REQUIRE(f != nullptr);
		REQUIRE(std::fwrite(contents.data(), 1, contents.size(), f) == contents.size());
		REQUIRE(std::fclose(f) == 0);
	}

	using ftw_callback = int (*)(const char*, const struct stat*, int, struct FTW*);

	/// Records signals: a handler with SA_SIGINFO and a plain one.
	struct signal_recorder
	{
		// Lock-free atomics: safe to write from a signal handler.
		std::atomic<int> signals{0};
		std::atomic<int> last{0};
		std::atomic<int> info_signo{0};
		std::atomic<int> info_code{0};
		std::atomic<bool> had_context{false};

		void with_info(int signo, siginfo_t* info, void* context)
		{
			signals.fetch_add(1);
			last.store(signo);
			info_signo.store(info->si_signo);
			info_code.store(info->si_code);
			had_context.store(context != nullptr);
		}

		void plain(int signo)
		{
			signals.fetch_add(1);
			last.store(signo);
		}
	};

	/// One-time initialisation, counted.
	struct initialiser
	{
		std::atomic<int> runs{0};
		std::atomic<int> value{0};
		void initialise()
		{
			runs.fetch_add(1);
			value.store(42);
		}
	};
} // namespace

TEST_CASE("closures_c_apis::nftw walks a directory tree with a member visitor, and removes it with a lambda",
          "[closures][c_apis]")
{
	char root_template[] = "/tmp/member_thunk_closures_XXXXXX";
	REQUIRE(::mkdtemp(root_template) != nullptr);
	const std::string root = root_template;
	REQUIRE(::mkdir((root + "/a").c_str(), 0700) == 0);
	REQUIRE(::mkdir((root + "/a/b").c_str(), 0700) == 0);
	REQUIRE(::mkdir((root + "/empty").c_str(), 0700) == 0);
	write_file(root + "/top.txt", "12345");
	write_file(root + "/a/one.txt", "1");
	write_file(root + "/a/b/deep.txt", "123456789");

	tree_visitor visitor(root);
	member_thunk::page p = member_thunk::allocate_page();
	const ftw_callback visit = p.make_closure<ftw_callback, &tree_visitor::visit>(&visitor);
	p.mark_executable();
	REQUIRE(::nftw(root.c_str(), visit, 8, FTW_PHYS) == 0);
	CHECK(visitor.seen() == std::vector<std::string>{"d0::-", "d1:/a:-", "d1:/empty:-", "d2:/a/b:-", "f1:/top.txt:5",
	                                                 "f2:/a/one.txt:1", "f3:/a/b/deep.txt:9"});

	// A second walk, children first, removes the tree: a unique closure of a lambda that counts what it removed.
	int removed = 0;
	auto remove_entry = [&removed](const char* path, const struct stat*, int, struct FTW*) {
		if (std::remove(path) != 0)
			return 1; // stops the walk
		++removed;
		return 0;
	};
	const auto remover = member_thunk::make_unique_closure<ftw_callback>(remove_entry);
	CHECK(::nftw(root.c_str(), remover.get(), 8, FTW_DEPTH | FTW_PHYS) == 0);
	CHECK(removed == 7);
	struct stat gone
	{
	};
	CHECK(::stat(root.c_str(), &gone) != 0);
}

TEST_CASE("closures_c_apis::sigaction calls member handlers (SA_SIGINFO and plain)", "[closures][c_apis]")
{
	signal_recorder recorder;
	member_thunk::page p = member_thunk::allocate_page();
	const auto with_info = p.make_closure<void (*)(int, siginfo_t*, void*), &signal_recorder::with_info>(&recorder);
	p.mark_executable();
	const auto plain = member_thunk::make_unique_closure<void (*)(int)>(&recorder, &signal_recorder::plain);

	struct sigaction action
	{
	};
	struct sigaction previous
	{
	};
	action.sa_sigaction = with_info;
	action.sa_flags = SA_SIGINFO;
	sigemptyset(&action.sa_mask);
	REQUIRE(::sigaction(SIGUSR1, &action, &previous) == 0);
	CHECK(std::raise(SIGUSR1) == 0);
	REQUIRE(::sigaction(SIGUSR1, &previous, nullptr) == 0);
	CHECK(recorder.signals.load() == 1);
	CHECK(recorder.last.load() == SIGUSR1);
	CHECK(recorder.info_signo.load() == SIGUSR1);
	CHECK(recorder.info_code.load() == SI_TKILL); // raise() is tgkill() on Linux
	CHECK(recorder.had_context.load());

	struct sigaction plain_action
	{
	};
	plain_action.sa_handler = plain.get();
	sigemptyset(&plain_action.sa_mask);
	REQUIRE(::sigaction(SIGUSR2, &plain_action, &previous) == 0);
	CHECK(std::raise(SIGUSR2) == 0);
	CHECK(std::raise(SIGUSR2) == 0);
	REQUIRE(::sigaction(SIGUSR2, &previous, nullptr) == 0);
	CHECK(recorder.signals.load() == 3);
	CHECK(recorder.last.load() == SIGUSR2);
}

TEST_CASE("closures_c_apis::pthread_once runs a void() closure once, whichever thread comes first",
          "[closures][c_apis]")
{
	initialiser init;
	const auto once_closure = member_thunk::make_unique_closure<void (*)(), &initialiser::initialise>(&init);
	pthread_once_t once = PTHREAD_ONCE_INIT;
	std::atomic<int> saw_value{0};
	std::vector<std::thread> threads;
	for (int i = 0; i < 4; ++i)
		threads.emplace_back([&] {
			if (::pthread_once(&once, once_closure.get()) == 0 && init.value.load() == 42)
				saw_value.fetch_add(1);
		});
	for (auto& t : threads)
		t.join();
	CHECK(init.runs.load() == 1);
	CHECK(saw_value.load() == 4);
}
#endif
#endif
