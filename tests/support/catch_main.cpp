// The tests' main: Catch2's, plus the child mode of death tests on Windows (support/child.hpp), where a test
// executable is started again to run one call of run_in_child in one test case.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdlib>
#include <string>

#if defined(_WIN32)
#include <windows.h>

namespace
{
	/// A child's unhandled exception ends it at once with the exception's code, which the parent reads
	/// (support/child.hpp). Without this, a process that has loaded user32 (a test of a window hook) gets Windows'
	/// (or wine's) crash handling instead: a debugger or a dialog that nobody closes, and the parent waits for ever.
	LONG WINAPI end_with_exception_code(EXCEPTION_POINTERS* exception)
	{
		::TerminateProcess(::GetCurrentProcess(), exception->ExceptionRecord->ExceptionCode);
		return EXCEPTION_EXECUTE_HANDLER;
	}

	/// A test name as a Catch test spec that matches only that name: the characters a spec gives a meaning to are
	/// escaped.
	std::string exact_test_spec(const std::string& name)
	{
		std::string spec;
		for (const char c : name)
		{
			if (c == '\\' || c == ',' || c == '[' || c == ']' || c == '*' || c == '"' || c == '~')
				spec += '\\';
			spec += c;
		}
		return spec;
	}
} // namespace
#endif

int main(int argc, char* argv[])
{
	Catch::Session session;
#if defined(_WIN32)
	if (const char* child_of = std::getenv("MEMBER_THUNK_TEST_CHILD_CASE"))
	{
		::SetErrorMode(SEM_FAILCRITICALERRORS | SEM_NOGPFAULTERRORBOX);
		::SetUnhandledExceptionFilter(&end_with_exception_code);
		session.configData().testsOrTags = {exact_test_spec(child_of)};
		return session.run();
	}
#endif
	return session.run(argc, argv);
}
