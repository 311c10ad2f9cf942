// The tests' main: Catch2's, plus the child mode of death tests on Windows (support/child.hpp), where a test
// executable is started again to run one call of run_in_child in one test case.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdlib>
#include <string>

#if defined(_WIN32)
namespace
{
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
		session.configData().testsOrTags = {exact_test_spec(child_of)};
		return session.run();
	}
#endif
	return session.run(argc, argv);
}
