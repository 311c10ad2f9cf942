// Closures: member functions as C callbacks that keep every argument.
//
// A thunk (make_thunk) puts the object in place of a callback's first argument, which works when that argument is a
// handle or a user-data pointer you do not need. Many C callbacks have no such argument: qsort's comparator gets two
// elements, a signal handler a signal number, an atexit handler nothing at all. A closure (make_closure) keeps every
// argument and passes the object in front of them, so
//
//     page.make_closure<int (*)(const void*, const void*), &sorter::compare>(&my_sorter)
//
// is a plain comparator that calls my_sorter.compare(a, b). As with thunks, there are two ways to get one: on a page
// (make_closure, several sealed at once, immutable from then on), or alone from the default heap
// (make_unique_closure, which returns a move-only unique_thunk that may be called at once and is revoked when it is
// destroyed; the usual choice for a single callback). Shown here: qsort with comparators that have state (a sort key
// chosen at run time, a call counter) and bsearch, on a page; an atexit handler (a void() callback), a unique closure
// on every system; nftw with a member visitor and pthread_once on a page, sigaction with a member handler and nftw
// with a lambda as unique closures on POSIX; a vectored exception handler, a unique closure, on Windows. The program
// checks what it saw and exits non-zero if anything is wrong.
//
// What a closure's callback may look like depends on the ABI: every argument must stay in a register once the object
// pointer is in front. x86-64 Linux and macOS: at most 5 integer or pointer parameters (float and double do not
// count); AArch64: 7; Windows x64: 3 parameters of any kind. Structures by value and long double are refused. A
// callback that does not fit is a compile error that says why. On 32-bit x86 every argument travels on the stack and
// closures are not possible at all: this program then only says so.

#if defined(_WIN32)
#define WIN32_LEAN_AND_MEAN
#define NOMINMAX
#include <windows.h>
#endif

#include <member_thunk/member_thunk.hpp>

#include <cstdio>
#include <cstdlib>

#if defined(__i386__) || defined(_M_IX86)

int main()
{
	std::puts("closures are not available on 32-bit x86 (every argument is on the stack): nothing to show");
	return EXIT_SUCCESS;
}

#else

#include <algorithm>
#include <array>
#include <csignal>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#if !defined(_WIN32)
#include <ftw.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

namespace
{
	int failures = 0;

	void check(bool ok, const char* what)
	{
		std::printf("%s: %s\n", ok ? "ok  " : "FAIL", what);
		if (!ok)
			++failures;
	}

	// --- qsort and bsearch: comparators with state -------------------------------------------------------------------
	struct city
	{
		const char* name;
		int population; // thousands
		int founded;    // the year of its first mention, roughly
	};

	/// Compares cities by the field chosen at run time, counting its calls: the state a plain comparator would have
	/// to keep in globals.
	class city_order
	{
	public:
		enum class key
		{
			population,
			founded
		};

		explicit city_order(key k) : key_(k) {}

		int compare(const void* a, const void* b)
		{
			++calls_;
			const auto* x = static_cast<const city*>(a);
			const auto* y = static_cast<const city*>(b);
			const int left = key_ == key::population ? x->population : x->founded;
			const int right = key_ == key::population ? y->population : y->founded;
			return left < right ? -1 : (left > right ? 1 : 0);
		}

		[[nodiscard]] int calls() const { return calls_; }

	private:
		key key_;
		int calls_ = 0;
	};

	void sort_and_search()
	{
		std::array<city, 6> cities{{{"Lyon", 522, -43},
		                            {"Porto", 232, -300},
		                            {"Graz", 291, 1128},
		                            {"Turku", 195, 1229},
		                            {"Brno", 380, 1243},
		                            {"Ghent", 263, 630}}};
		using comparator = int (*)(const void*, const void*);

		city_order by_population(city_order::key::population);
		city_order by_age(city_order::key::founded);
		member_thunk::page page = member_thunk::allocate_page();
		const comparator population_order = page.make_closure<comparator, &city_order::compare>(&by_population);
		const comparator age_order = page.make_closure<comparator, &city_order::compare>(&by_age);
		page.mark_executable(); // the closures may be called from here on

		std::qsort(cities.data(), cities.size(), sizeof(city), population_order);
		std::printf("by population:");
		for (const city& c : cities)
			std::printf(" %s", c.name);
		std::printf(" (%d comparisons)\n", by_population.calls());
		check(std::strcmp(cities.front().name, "Turku") == 0 && std::strcmp(cities.back().name, "Lyon") == 0,
		      "qsort sorted by population through the closure");
		check(by_population.calls() >= 5 && by_age.calls() == 0, "each closure called its own object");

		// bsearch on the sorted array, with the same comparator: the key is a city with only the population set.
		const city wanted{"", 291, 0};
		const auto* found = static_cast<const city*>(
		    std::bsearch(&wanted, cities.data(), cities.size(), sizeof(city), population_order));
		check(found != nullptr && std::strcmp(found->name, "Graz") == 0, "bsearch found the city of 291 000");

		std::qsort(cities.data(), cities.size(), sizeof(city), age_order);
		check(std::strcmp(cities.front().name, "Porto") == 0 && std::strcmp(cities.back().name, "Brno") == 0,
		      "qsort sorted by age through the second closure");
	}

	// --- atexit: a void() callback ----------------------------------------------------------------------------------
	/// Reports at exit how many events the program logged.
	struct exit_report
	{
		int events = 0;
		void at_exit()
		{
			std::printf("at exit: %d events logged\n", events);
			if (events != 3)
				std::_Exit(EXIT_FAILURE); // too late to return an error: end with one
		}
	};

	void register_exit_report()
	{
		// Exit handlers run after main returns: the object and its closure must live until then (statics constructed
		// before std::atexit is called are destroyed after the handler runs). A unique closure needs no page and is
		// callable at once.
		static exit_report report;
		static const member_thunk::unique_thunk<void (*)()> handler =
		    member_thunk::make_unique_closure<void (*)(), &exit_report::at_exit>(&report);
		check(std::atexit(handler.get()) == 0, "atexit took the closure");
		for (int i = 0; i < 3; ++i)
			++report.events;
	}

#if defined(_WIN32)
	// --- Windows: a vectored exception handler -----------------------------------------------------------------------
	/// Resumes after one exception code of its own and counts it; PVECTORED_EXCEPTION_HANDLER gets no user data.
	struct resumer
	{
		static constexpr DWORD code = 0xE0C1'05E5;
		int resumed = 0;

		LONG handle(EXCEPTION_POINTERS* info)
		{
			if (info->ExceptionRecord->ExceptionCode != code)
				return EXCEPTION_CONTINUE_SEARCH;
			++resumed;
			return EXCEPTION_CONTINUE_EXECUTION;
		}
	};

	void system_callbacks()
	{
		resumer r;
		const auto handler = member_thunk::make_unique_closure<PVECTORED_EXCEPTION_HANDLER, &resumer::handle>(&r);
		void* const registration = AddVectoredExceptionHandler(1, handler.get());
		RaiseException(resumer::code, 0, 0, nullptr);
		RemoveVectoredExceptionHandler(registration); // before the closure goes
		check(registration != nullptr && r.resumed == 1, "a vectored exception handler resumed through a member");
	}
#else
	// --- POSIX: nftw, sigaction, pthread_once ------------------------------------------------------------------------
	/// Sums the sizes of the regular files below a directory.
	class disk_usage
	{
	public:
		int visit(const char* /*path*/, const struct stat* info, int kind, struct FTW* /*where*/)
		{
			if (kind == FTW_F)
			{
				++files_;
				bytes_ += static_cast<long>(info->st_size);
			}
			return 0; // go on
		}

		[[nodiscard]] int files() const { return files_; }
		[[nodiscard]] long bytes() const { return bytes_; }

	private:
		int files_ = 0;
		long bytes_ = 0;
	};

	bool write_file(const std::string& path, const char* text)
	{
		std::FILE* const f = std::fopen(path.c_str(), "w");
		if (f == nullptr)
			return false;
		const bool ok = std::fputs(text, f) >= 0;
		return std::fclose(f) == 0 && ok;
	}

	/// Counts the signals it handles (volatile sig_atomic_t: what a signal handler may write).
	struct signal_counter
	{
		volatile std::sig_atomic_t count = 0;
		volatile std::sig_atomic_t last = 0;
		void on_signal(int signo, siginfo_t* /*info*/, void* /*context*/)
		{
			count = count + 1;
			last = signo;
		}
	};

	/// Initialised once, whoever asks first.
	struct settings
	{
		int loads = 0;
		void load() { ++loads; }
	};

	void system_callbacks()
	{
		using ftw_visitor = int (*)(const char*, const struct stat*, int, struct FTW*);

		// A small tree in a temporary directory.
		char root_name[] = "/tmp/member_thunk_example_XXXXXX";
		if (::mkdtemp(root_name) == nullptr)
		{
			check(false, "mkdtemp");
			return;
		}
		const std::string root = root_name;
		const bool made = ::mkdir((root + "/sub").c_str(), 0700) == 0 && write_file(root + "/a.txt", "hello\n") &&
		                  write_file(root + "/sub/b.txt", "closures\n");
		check(made, "a temporary tree was made");

		disk_usage usage;
		signal_counter signals;
		settings config;
		member_thunk::page page = member_thunk::allocate_page();
		const ftw_visitor visitor = page.make_closure<ftw_visitor, &disk_usage::visit>(&usage);
		const auto load_once = page.make_closure<void (*)(), &settings::load>(&config);
		page.mark_executable();

		check(::nftw(root.c_str(), visitor, 4, FTW_PHYS) == 0 && usage.files() == 2 && usage.bytes() == 15,
		      "nftw visited 2 files of 15 bytes through the member visitor");

		// Removing the tree: a lambda this time, children first (FTW_DEPTH).
		int removed = 0;
		auto remove_entry = [&removed](const char* path, const struct stat*, int, struct FTW*) {
			removed += std::remove(path) == 0 ? 1 : 0;
			return 0;
		};
		const auto remover = member_thunk::make_unique_closure<ftw_visitor>(remove_entry);
		check(::nftw(root.c_str(), remover.get(), 4, FTW_DEPTH | FTW_PHYS) == 0 && removed == 4,
		      "nftw removed the tree through a lambda");

		// One handler for one signal, installed and removed within this function: a unique closure fits, no page
		// needed. The previous handler is back in place before the closure is destroyed (and revoked) on return.
		const auto handler =
		    member_thunk::make_unique_closure<void (*)(int, siginfo_t*, void*), &signal_counter::on_signal>(&signals);
		struct sigaction action
		{
		};
		struct sigaction previous
		{
		};
		action.sa_sigaction = handler.get();
		action.sa_flags = SA_SIGINFO;
		sigemptyset(&action.sa_mask);
		const bool installed = ::sigaction(SIGUSR1, &action, &previous) == 0;
		std::raise(SIGUSR1);
		std::raise(SIGUSR1);
		::sigaction(SIGUSR1, &previous, nullptr); // before the closure goes
		check(installed && signals.count == 2 && signals.last == SIGUSR1, "sigaction called the member handler");

		pthread_once_t once = PTHREAD_ONCE_INIT;
		::pthread_once(&once, load_once);
		::pthread_once(&once, load_once);
		check(config.loads == 1, "pthread_once ran the void() closure once");
	}
#endif
} // namespace

int main()
{
	try
	{
		sort_and_search();
		system_callbacks();
		register_exit_report();
	}
	catch (const std::exception& e)
	{
		std::printf("FAIL: %s\n", e.what());
		return EXIT_FAILURE;
	}
	if (failures != 0)
	{
		std::printf("%d checks failed\n", failures);
		return EXIT_FAILURE;
	}
	std::puts("all closures worked");
	return EXIT_SUCCESS;
}

#endif
